/*
 * FlipLab - COBS encoder of a frame held in memory, with its 0x00 delimiter
 * (docs/protocol.md, "Framing"; the RTL mirror of firmware/core/fl_cobs.c).
 *
 * start (while !busy) encodes bytes 0 .. length-1 of a byte memory that the
 * encoder reads through rd_addr / rd_data with one cycle of latency (block
 * RAM with a registered read; rd_data must be mem[rd_addr] as registered at
 * the previous clock edge). The encoded bytes and then 0x00 leave on m_*
 * (valid/ready). Each block is found by scanning ahead to the next 0x00, at
 * most 254 bytes, then sent as its code byte (block length + 1) and its
 * data: the encoding of the `cobs` Python package, 0xFF for a full block of
 * 254 non-zero bytes without an implied zero, a final 0x01 after a trailing
 * 0x00, and 01 for an empty frame. Two clock cycles per byte plus one per
 * block: far below a UART's byte time.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module cobs_encode #
(
    parameter ADDR_BITS = 13
)
(
    input  wire                 clk,
    input  wire                 rst,

    input  wire                 start,
    input  wire [ADDR_BITS-1:0] length,
    output wire                 busy,

    output wire [ADDR_BITS-1:0] rd_addr,
    input  wire [7:0]           rd_data,

    output wire                 m_valid,
    output wire [7:0]           m_data,
    input  wire                 m_ready
);

localparam [2:0] ST_IDLE = 3'd0, ST_SCAN_ADDR = 3'd1, ST_SCAN_DATA = 3'd2, ST_CODE = 3'd3,
                 ST_DATA_ADDR = 3'd4, ST_DATA = 3'd5, ST_DELIM = 3'd6;
localparam [ADDR_BITS-1:0] FULL_BLOCK = 254;

reg [2:0]           state_reg = ST_IDLE;
reg [ADDR_BITS-1:0] len_reg = {ADDR_BITS{1'b0}};
reg [ADDR_BITS-1:0] pos_reg = {ADDR_BITS{1'b0}};  // first byte of the current block
reg [ADDR_BITS-1:0] scan_reg = {ADDR_BITS{1'b0}}; // the byte being looked at
reg [ADDR_BITS-1:0] send_reg = {ADDR_BITS{1'b0}}; // the data byte being sent
reg [7:0]           code_reg = 8'd0;
reg                 zero_reg = 1'b0;              // the block ended at a 0x00

wire [ADDR_BITS-1:0] block_len = scan_reg - pos_reg;
wire [7:0] code_next = block_len[7:0] + 8'd1;

always @(posedge clk) begin
    case (state_reg)
        ST_IDLE: begin
            if (start) begin
                len_reg <= length;
                pos_reg <= {ADDR_BITS{1'b0}};
                scan_reg <= {ADDR_BITS{1'b0}};
                state_reg <= ST_SCAN_ADDR;
            end
        end
        ST_SCAN_ADDR: begin
            if (scan_reg == len_reg || block_len == FULL_BLOCK) begin
                code_reg <= code_next;
                zero_reg <= 1'b0;
                state_reg <= ST_CODE;
            end else begin
                state_reg <= ST_SCAN_DATA;
            end
        end
        ST_SCAN_DATA: begin
            if (rd_data == 8'h00) begin
                code_reg <= code_next;
                zero_reg <= 1'b1;
                state_reg <= ST_CODE;
            end else begin
                scan_reg <= scan_reg + 1'b1;
                state_reg <= ST_SCAN_ADDR;
            end
        end
        ST_CODE: begin
            if (m_ready) begin
                send_reg <= pos_reg;
                state_reg <= ST_DATA_ADDR;
            end
        end
        ST_DATA_ADDR: begin
            if (send_reg == scan_reg) begin
                // block sent: after a 0x00 the next block starts behind it; else at scan
                if (zero_reg) begin
                    pos_reg <= scan_reg + 1'b1;
                    scan_reg <= scan_reg + 1'b1;
                    state_reg <= ST_SCAN_ADDR;
                end else if (scan_reg == len_reg) begin
                    state_reg <= ST_DELIM;
                end else begin
                    pos_reg <= scan_reg;
                    state_reg <= ST_SCAN_ADDR;
                end
            end else begin
                state_reg <= ST_DATA;
            end
        end
        ST_DATA: begin
            if (m_ready) begin
                send_reg <= send_reg + 1'b1;
                state_reg <= ST_DATA_ADDR;
            end
        end
        default: begin // ST_DELIM
            if (m_ready) begin
                state_reg <= ST_IDLE;
            end
        end
    endcase

    if (rst) begin
        state_reg <= ST_IDLE;
    end
end

assign busy = state_reg != ST_IDLE;
assign rd_addr = (state_reg == ST_SCAN_ADDR || state_reg == ST_SCAN_DATA) ? scan_reg : send_reg;
assign m_valid = state_reg == ST_CODE || state_reg == ST_DATA || state_reg == ST_DELIM;
assign m_data = state_reg == ST_CODE ? code_reg : (state_reg == ST_DATA ? rd_data : 8'h00);

endmodule

`resetall
