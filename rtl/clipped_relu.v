/*
 * FlipLab - clipped ReLU of FT-ClipAct (combinational).
 *
 * y = x if 0 <= x <= T, else 0 (values above T become 0, not T),
 * when enable is high; y = x when enable is low (no activation, e.g. logits).
 * x is signed DATA_BITS; T is a non-negative threshold held in DATA_BITS bits
 * (0 .. 2^(DATA_BITS-1)-1; T = 127 for int8 is the plain ReLU).
 * Reference: host.hw.requant.clipped_relu.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module clipped_relu #
(
    parameter DATA_BITS = 8
)
(
    input  wire                 enable,
    input  wire [DATA_BITS-1:0] thresh,
    input  wire [DATA_BITS-1:0] in_data,
    output wire [DATA_BITS-1:0] out_data
);

wire in_range = !in_data[DATA_BITS-1] && ($signed(in_data) <= $signed(thresh));

assign out_data = (!enable || in_range) ? in_data : {DATA_BITS{1'b0}};

endmodule

`resetall
