/*
 * FlipLab - the ULX3S top with the accelerator: ulx3s_top with ACCEL = 1, so
 * the board serves the protocol-v2 commands (ACCEL_INFO / WRITE / LOAD / RUN,
 * docs/protocol.md) beside the memory commands. Same pins (ulx3s.lpf) and
 * clock as ulx3s_top; built with make fpga BOARD=ulx3s-accel.
 *
 * Timing: before the datapath pipelining of issue 13 item 2 nextpnr routed it
 * at 23.7 MHz (FAIL at 25: critical path lane_loader's K*q offset multiplier
 * into mac_dense); with it, nextpnr's estimate after placement is 40.7 MHz
 * (PASS at 25), and accel_top alone routes at 52.7 MHz (docs/benchmarks.md,
 * "FPGA build").
 * Everything here is tested in simulation (tests/rtl/test_fpga_accel.py).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module ulx3s_accel_top #
(
    parameter CLK_HZ = 25000000,
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

ulx3s_top #(
    .CLK_HZ(CLK_HZ), .BAUD(BAUD), .MEM_ADDR_BITS(MEM_ADDR_BITS), .TIMEOUT_CYCLES(TIMEOUT_CYCLES),
    .ACCEL(1), .LANES(LANES), .WORD_BITS(WORD_BITS), .ACC_ADDR_BITS(ACC_ADDR_BITS),
    .N_BITS(N_BITS), .P_BITS(P_BITS), .L_BITS(L_BITS), .RUN_TIMEOUT(RUN_TIMEOUT)
) u_top (
    .clk_25mhz(clk_25mhz), .btn(btn), .ftdi_txd(ftdi_txd), .ftdi_rxd(ftdi_rxd), .led(led)
);

endmodule

`resetall
