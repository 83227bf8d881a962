/*
 * FlipLab - UART receiver, 8N1 by default, CLK_DIV clock cycles per bit
 * (>= 4). rxd is asynchronous: it passes a two-flop synchroniser first.
 *
 * A frame starts at a high-to-low edge of the synchronised line. The start
 * bit is checked at its middle (a low pulse shorter than half a bit is a
 * glitch and ignored); data bits (least significant first) and the stop bit
 * are sampled at their middles. A stop bit of 1 delivers the byte: m_valid
 * pulses for one cycle with m_data. A stop bit of 0 pulses frame_error
 * instead, and the receiver waits for the line to return high before it
 * looks for the next start bit.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module uart_rx #
(
    parameter CLK_DIV = 868,
    parameter DATA_BITS = 8
)
(
    input  wire                 clk,
    input  wire                 rst,

    input  wire                 rxd,

    output wire                 m_valid,
    output wire [DATA_BITS-1:0] m_data,
    output wire                 frame_error
);

localparam DIV_BITS = $clog2(CLK_DIV);
localparam BIT_BITS = $clog2(DATA_BITS + 2);
localparam DIV_LAST_INT = CLK_DIV - 1;
localparam [DIV_BITS-1:0] DIV_LAST = DIV_LAST_INT[DIV_BITS-1:0];
localparam DIV_HALF_INT = CLK_DIV / 2 - 1;
localparam [DIV_BITS-1:0] DIV_HALF = DIV_HALF_INT[DIV_BITS-1:0];
localparam STOP_BIT_INT = DATA_BITS + 1;
localparam [BIT_BITS-1:0] STOP_BIT = STOP_BIT_INT[BIT_BITS-1:0];

localparam [1:0] ST_IDLE = 2'd0, ST_FRAME = 2'd1, ST_BREAK = 2'd2;

reg [1:0]           sync_reg = 2'b11;
reg                 line_prev_reg = 1'b1;
reg [1:0]           state_reg = ST_IDLE;
reg [DIV_BITS-1:0]  div_reg = {DIV_BITS{1'b0}};
reg [BIT_BITS-1:0]  bit_reg = {BIT_BITS{1'b0}};
reg [DATA_BITS-1:0] shift_reg = {DATA_BITS{1'b0}};
reg                 m_valid_reg = 1'b0;
reg [DATA_BITS-1:0] m_data_reg = {DATA_BITS{1'b0}};
reg                 frame_error_reg = 1'b0;

wire line = sync_reg[1];

always @(posedge clk) begin
    sync_reg <= {sync_reg[0], rxd};
    line_prev_reg <= line;
    m_valid_reg <= 1'b0;
    frame_error_reg <= 1'b0;

    case (state_reg)
        ST_IDLE: begin
            if (line_prev_reg && !line) begin
                // falling edge: the middle of the start bit is half a bit away
                state_reg <= ST_FRAME;
                div_reg <= DIV_HALF;
                bit_reg <= {BIT_BITS{1'b0}};
            end
        end
        ST_FRAME: begin
            if (div_reg == {DIV_BITS{1'b0}}) begin
                div_reg <= DIV_LAST;
                bit_reg <= bit_reg + 1'b1;
                if (bit_reg == {BIT_BITS{1'b0}}) begin
                    if (line) begin
                        state_reg <= ST_IDLE;  // glitch, not a start bit
                    end
                end else if (bit_reg == STOP_BIT) begin
                    if (line) begin
                        m_valid_reg <= 1'b1;
                        m_data_reg <= shift_reg;
                        state_reg <= ST_IDLE;
                    end else begin
                        frame_error_reg <= 1'b1;
                        state_reg <= ST_BREAK;
                    end
                end else begin
                    shift_reg <= {line, shift_reg[DATA_BITS-1:1]};
                end
            end else begin
                div_reg <= div_reg - 1'b1;
            end
        end
        default: begin
            if (line) begin
                state_reg <= ST_IDLE;
            end
        end
    endcase

    if (rst) begin
        state_reg <= ST_IDLE;
        m_valid_reg <= 1'b0;
        frame_error_reg <= 1'b0;
        line_prev_reg <= 1'b1;
        sync_reg <= 2'b11;
    end
end

assign m_valid = m_valid_reg;
assign m_data = m_data_reg;
assign frame_error = frame_error_reg;

endmodule

`resetall
