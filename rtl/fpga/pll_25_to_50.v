/*
 * FlipLab - the ULX3S system clock: 50 MHz from the board's 25 MHz oscillator
 * with one ECP5 PLL (EHXPLLL), and its lock.
 *
 * Feedback from CLKOP, so f_out = f_in * CLKFB_DIV / CLKI_DIV = 25 * 2 / 1 =
 * 50 MHz; the VCO runs at f_out * CLKOP_DIV = 600 MHz (the ECP5's range is
 * 400-800 MHz), CLKOP_CPHASE = CLKOP_DIV / 2 - 1 for no phase shift. The PLL
 * exists only in synthesis (Yosys defines SYNTHESIS); in simulation and lint
 * the clock passes through and the lock is high, so the cocotb tests of the top
 * see the same design with one clock.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pll_25_to_50
(
    input  wire clk_25mhz,
    output wire clk,
    output wire locked
);

`ifdef SYNTHESIS
(* FREQUENCY_PIN_CLKI = "25" *)
(* FREQUENCY_PIN_CLKOP = "50" *)
EHXPLLL #(
    .PLLRST_ENA("DISABLED"),
    .INTFB_WAKE("DISABLED"),
    .STDBY_ENABLE("DISABLED"),
    .DPHASE_SOURCE("DISABLED"),
    .OUTDIVIDER_MUXA("DIVA"),
    .OUTDIVIDER_MUXB("DIVB"),
    .OUTDIVIDER_MUXC("DIVC"),
    .OUTDIVIDER_MUXD("DIVD"),
    .CLKI_DIV(1),
    .CLKFB_DIV(2),
    .CLKOP_ENABLE("ENABLED"),
    .CLKOP_DIV(12),
    .CLKOP_CPHASE(5),
    .CLKOP_FPHASE(0),
    .FEEDBK_PATH("CLKOP")
) u_pll (
    .RST(1'b0),
    .STDBY(1'b0),
    .CLKI(clk_25mhz),
    .CLKOP(clk),
    .CLKFB(clk),
    .CLKINTFB(),
    .PHASESEL0(1'b0),
    .PHASESEL1(1'b0),
    .PHASEDIR(1'b1),
    .PHASESTEP(1'b1),
    .PHASELOADREG(1'b1),
    .PLLWAKESYNC(1'b0),
    .ENCLKOP(1'b0),
    .LOCK(locked)
);
`else
assign clk = clk_25mhz;
assign locked = 1'b1;
`endif

endmodule

`resetall
