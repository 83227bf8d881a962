/*
 * FlipLab - top level for the Radiona ULX3S (Lattice ECP5 LFE5U-85F,
 * CABGA381): the board protocol server (board_server.v) on the FT231X
 * USB serial port, 115200 8N1, with MEM_ADDR_BITS of block RAM as the
 * board memory (default 128 KiB = 64 DP16KD of the 208) and, with
 * ACCEL = 1 (ulx3s_accel_top.v), the accelerator (accel_top.v) behind the
 * protocol-v2 commands; LANES .. L_BITS are its build parameters.
 *
 * Clock: the 25 MHz oscillator, used directly (25e6 / 115200 = 217.01
 * cycles per bit, 0.005 % off); the protocol path needs no PLL.
 * Reset: the PWR button (btn[0], active low) and configuration, through a
 * reset synchroniser. LEDs: 0 = out of reset, 1 = a byte is being received,
 * 2 = a byte is being sent (both stretched to be visible).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module ulx3s_top #
(
    parameter CLK_HZ = 25000000,
    parameter BAUD = 115200,
    parameter MEM_ADDR_BITS = 17,
    parameter TIMEOUT_CYCLES = CLK_HZ / 10,  // 100 ms inside a frame
    parameter ACCEL = 0,   // 1: the accelerator (ulx3s_accel_top.v)
    parameter LANES = 8,
    parameter WORD_BITS = 128,
    parameter ACC_ADDR_BITS = 10,
    parameter N_BITS = 7,
    parameter P_BITS = 8,
    parameter L_BITS = 3,
    parameter RUN_TIMEOUT = 16 * (1 << L_BITS) * ((1 << (2 * N_BITS)) + 64)
)
(
    input  wire       clk_25mhz,
    input  wire [0:0] btn,
    input  wire       ftdi_txd,   // from the FT231X: the FPGA receives
    output wire       ftdi_rxd,   // to the FT231X: the FPGA transmits
    output wire [7:0] led
);

localparam CLK_DIV = (CLK_HZ + BAUD / 2) / BAUD;
localparam STRETCH_BITS = 20;             // 42 ms at 25 MHz

wire rst;

reset_sync u_rst (.clk(clk_25mhz), .arst_in(!btn[0]), .rst_out(rst));

wire txd;

board_server #(
    .CLK_DIV(CLK_DIV), .MEM_ADDR_BITS(MEM_ADDR_BITS), .TIMEOUT_CYCLES(TIMEOUT_CYCLES),
    .ACCEL(ACCEL), .LANES(LANES), .WORD_BITS(WORD_BITS), .ACC_ADDR_BITS(ACC_ADDR_BITS),
    .N_BITS(N_BITS), .P_BITS(P_BITS), .L_BITS(L_BITS), .RUN_TIMEOUT(RUN_TIMEOUT)
) u_server (
    .clk(clk_25mhz), .rst(rst), .rxd(ftdi_txd), .txd(txd)
);

assign ftdi_rxd = txd;

reg [STRETCH_BITS-1:0] rx_led_reg = {STRETCH_BITS{1'b0}};
reg [STRETCH_BITS-1:0] tx_led_reg = {STRETCH_BITS{1'b0}};

always @(posedge clk_25mhz) begin
    rx_led_reg <= !ftdi_txd ? {STRETCH_BITS{1'b1}} : rx_led_reg - {{(STRETCH_BITS-1){1'b0}}, rx_led_reg != 0};
    tx_led_reg <= !txd ? {STRETCH_BITS{1'b1}} : tx_led_reg - {{(STRETCH_BITS-1){1'b0}}, tx_led_reg != 0};
end

assign led = {5'd0, tx_led_reg != 0, rx_led_reg != 0, !rst};

endmodule

`resetall
