/*
 * FlipLab - streaming COBS decoder and frame splitter (docs/protocol.md,
 * "Framing" and "Receiving"; the RTL mirror of firmware/core/fl_frame.c).
 *
 * Input: the received byte stream, one byte per s_valid (no back-pressure:
 * a UART cannot wait). 0x00 ends a frame. Output: the decoded bytes of the
 * frame as they arrive (m_valid, m_data), at most one per input byte, then
 * one frame_done pulse at the delimiter. A frame is good when frame_done
 * comes with none of the error flags; the consumer discards what it
 * received otherwise:
 *   cobs_error - a code byte pointed past the delimiter (not valid COBS);
 *   oversize   - more than MAX_ENCODED bytes before the delimiter (the
 *                decoder stops emitting bytes once the limit is passed).
 * An empty frame (0x00 right after 0x00) is ignored: no frame_done.
 * timeout pulses when a partial frame saw no byte for TIMEOUT_CYCLES clock
 * cycles; the partial frame is then dropped (no frame_done; the consumer
 * restarts on the next byte). TIMEOUT_CYCLES = 0 disables the timeout.
 *
 * The code byte of a block is not output. A block whose code is below 0xFF
 * implies a 0x00 after its data, emitted when the next code byte arrives
 * (so the last block's implied zero, which is not part of the data, never
 * is): this is the decoding of the `cobs` Python package.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module cobs_decode #
(
    parameter MAX_ENCODED = 4129,
    parameter TIMEOUT_CYCLES = 0
)
(
    input  wire        clk,
    input  wire        rst,

    input  wire        s_valid,
    input  wire [7:0]  s_data,

    output wire        m_valid,
    output wire [7:0]  m_data,

    output wire        frame_done,
    output wire        cobs_error,
    output wire        oversize,
    output wire        timeout
);

localparam LEN_BITS = $clog2(MAX_ENCODED + 2);
localparam [LEN_BITS-1:0] LEN_MAX = MAX_ENCODED[LEN_BITS-1:0];
localparam TO_BITS = TIMEOUT_CYCLES > 1 ? $clog2(TIMEOUT_CYCLES + 1) : 1;
localparam TO_LAST_INT = TIMEOUT_CYCLES > 0 ? TIMEOUT_CYCLES - 1 : 0;
localparam [TO_BITS-1:0] TO_LAST = TO_LAST_INT[TO_BITS-1:0];

reg                in_frame_reg = 1'b0;   // bytes of a frame have arrived
reg [7:0]          left_reg = 8'd0;       // data bytes left in the current block
reg                zero_reg = 1'b0;       // the current block implies a trailing 0x00
reg [LEN_BITS-1:0] len_reg = {LEN_BITS{1'b0}};
reg                over_reg = 1'b0;
reg [TO_BITS-1:0]  idle_reg = {TO_BITS{1'b0}};

reg       m_valid_reg = 1'b0;
reg [7:0] m_data_reg = 8'd0;
reg       frame_done_reg = 1'b0;
reg       cobs_error_reg = 1'b0;
reg       oversize_reg = 1'b0;
reg       timeout_reg = 1'b0;

// this byte is beyond MAX_ENCODED: the frame is oversize, nothing more is emitted
wire past_max = over_reg || len_reg == LEN_MAX;

always @(posedge clk) begin
    m_valid_reg <= 1'b0;
    frame_done_reg <= 1'b0;
    cobs_error_reg <= 1'b0;
    oversize_reg <= 1'b0;
    timeout_reg <= 1'b0;

    if (s_valid) begin
        idle_reg <= {TO_BITS{1'b0}};
        if (s_data == 8'h00) begin
            if (in_frame_reg) begin
                frame_done_reg <= 1'b1;
                cobs_error_reg <= left_reg != 8'd0;
                oversize_reg <= over_reg;
            end
            in_frame_reg <= 1'b0;
            left_reg <= 8'd0;
            zero_reg <= 1'b0;
            len_reg <= {LEN_BITS{1'b0}};
            over_reg <= 1'b0;
        end else begin
            in_frame_reg <= 1'b1;
            if (past_max) begin
                over_reg <= 1'b1;
            end else begin
                len_reg <= len_reg + 1'b1;
            end
            if (left_reg == 8'd0) begin
                // a code byte: the previous block's implied zero is data after all
                m_valid_reg <= in_frame_reg && zero_reg && !past_max;
                m_data_reg <= 8'h00;
                left_reg <= s_data - 1'b1;
                zero_reg <= s_data != 8'hFF;
            end else begin
                m_valid_reg <= !past_max;
                m_data_reg <= s_data;
                left_reg <= left_reg - 1'b1;
            end
        end
    end else if (TIMEOUT_CYCLES > 0 && in_frame_reg) begin
        if (idle_reg == TO_LAST) begin
            timeout_reg <= 1'b1;
            in_frame_reg <= 1'b0;
            left_reg <= 8'd0;
            zero_reg <= 1'b0;
            len_reg <= {LEN_BITS{1'b0}};
            over_reg <= 1'b0;
            idle_reg <= {TO_BITS{1'b0}};
        end else begin
            idle_reg <= idle_reg + 1'b1;
        end
    end

    if (rst) begin
        in_frame_reg <= 1'b0;
        left_reg <= 8'd0;
        zero_reg <= 1'b0;
        len_reg <= {LEN_BITS{1'b0}};
        over_reg <= 1'b0;
        idle_reg <= {TO_BITS{1'b0}};
        m_valid_reg <= 1'b0;
        frame_done_reg <= 1'b0;
        timeout_reg <= 1'b0;
    end
end

assign m_valid = m_valid_reg;
assign m_data = m_data_reg;
assign frame_done = frame_done_reg;
assign cobs_error = cobs_error_reg;
assign oversize = oversize_reg;
assign timeout = timeout_reg;

endmodule

`resetall
