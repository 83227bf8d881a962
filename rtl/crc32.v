/*
 * FlipLab - CRC-32 of a byte stream, one byte per clock (docs/protocol.md,
 * "Framing"; the RTL mirror of firmware/core/fl_crc32.c).
 *
 * A reflected CRC (least significant bit first, as on a UART): POLY is the
 * polynomial in reflected form. The defaults are CRC-32/ISO-HDLC, the one of
 * zlib.crc32: poly 0x04C11DB7 (reflected 0xEDB88320), init 0xFFFFFFFF,
 * xorout 0xFFFFFFFF; check value CRC("123456789") = 0xCBF43926.
 *
 * clear (synchronous) restarts the register at INIT; when clear and s_valid
 * are high in the same cycle, s_data is the first byte of the new message.
 * crc = register ^ XOROUT, the CRC of the bytes since the last clear, valid
 * the cycle after the last byte. A message followed by its own CRC
 * (little-endian) leaves the register at the residue 0xDEBB20E3, which is
 * how a receiver checks a frame without holding back its last 4 bytes
 * (residue_ok).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module crc32 #
(
    parameter [31:0] POLY = 32'hEDB88320,
    parameter [31:0] INIT = 32'hFFFFFFFF,
    parameter [31:0] XOROUT = 32'hFFFFFFFF,
    parameter [31:0] RESIDUE = 32'hDEBB20E3
)
(
    input  wire        clk,
    input  wire        rst,

    input  wire        clear,
    input  wire        s_valid,
    input  wire [7:0]  s_data,

    output wire [31:0] crc,
    output wire        residue_ok
);

reg [31:0] crc_reg = INIT;

// eight shift-and-conditionally-xor steps of the reflected CRC on one byte
function [31:0] crc_byte(input [31:0] c, input [7:0] d);
    integer k;
    reg [31:0] r;
    begin
        r = c ^ {24'd0, d};
        for (k = 0; k < 8; k = k + 1) begin
            r = r[0] ? ((r >> 1) ^ POLY) : (r >> 1);
        end
        crc_byte = r;
    end
endfunction

wire [31:0] start = clear ? INIT : crc_reg;

always @(posedge clk) begin
    if (clear || s_valid) begin
        crc_reg <= s_valid ? crc_byte(start, s_data) : INIT;
    end
    if (rst) begin
        crc_reg <= INIT;
    end
end

assign crc = crc_reg ^ XOROUT;
assign residue_ok = crc_reg == RESIDUE;

endmodule

`resetall
