/*
 * FlipLab - the ULX3S top with the accelerator: ulx3s_top with ACCEL = 1, so
 * the board serves the protocol-v2 commands (ACCEL_INFO / WRITE / LOAD / RUN,
 * docs/protocol.md) beside the memory commands. Same pins (ulx3s.lpf) and
 * clock as ulx3s_top; built with make fpga BOARD=ulx3s-accel.
 *
 * Clock: a PLL (pll_25_to_50.v) makes the 50 MHz system clock from the
 * board's 25 MHz oscillator; the design is held in reset until it locks (the
 * lock joins the button into ulx3s_top's reset synchroniser). ulx3s_top's
 * port keeps the oscillator's pin name, clk_25mhz, but runs at CLK_HZ.
 * Timing: placed and routed at 52 MHz with LANES = 8 (docs/benchmarks.md,
 * "FPGA build"; before the datapath pipelining of issue 13 item 2: 23.7 MHz).
 * Everything here is tested in simulation (tests/rtl/test_fpga_accel.py).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module ulx3s_accel_top #
(
    parameter CLK_HZ = 50000000,  // the system clock: the PLL's output
    parameter BAUD = 115200,
    parameter MEM_ADDR_BITS = 17,
    parameter TIMEOUT_CYCLES = CLK_HZ / 10,
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
    input  wire       ftdi_txd,
    output wire       ftdi_rxd,
    output wire [7:0] led
);

wire clk;
wire locked;

pll_25_to_50 u_pll (.clk_25mhz(clk_25mhz), .clk(clk), .locked(locked));

ulx3s_top #(
    .CLK_HZ(CLK_HZ), .BAUD(BAUD), .MEM_ADDR_BITS(MEM_ADDR_BITS), .TIMEOUT_CYCLES(TIMEOUT_CYCLES),
    .ACCEL(1), .LANES(LANES), .WORD_BITS(WORD_BITS), .ACC_ADDR_BITS(ACC_ADDR_BITS),
    .N_BITS(N_BITS), .P_BITS(P_BITS), .L_BITS(L_BITS), .RUN_TIMEOUT(RUN_TIMEOUT)
) u_top (
    .clk_25mhz(clk), .btn(btn & {locked}), .ftdi_txd(ftdi_txd), .ftdi_rxd(ftdi_rxd), .led(led)
);

endmodule

`resetall
