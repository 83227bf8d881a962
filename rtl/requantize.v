/*
 * FlipLab - requantisation of an accumulator to a narrow signed output.
 *
 *   p = acc * M                       (ACC_BITS x MULT_BITS signed product, M >= 0)
 *   r = (p + 2^(S-1)) >>> S  if S > 0 (round half up: floor(p / 2^S + 1/2))
 *   r = p                    if S = 0
 *   out = saturate(r) to [-2^(OUT_BITS-1), 2^(OUT_BITS-1)-1]
 *
 * M must be in [0, 2^(MULT_BITS-1)-1] and S in [0, ACC_BITS+MULT_BITS-3] so
 * that p + 2^(S-1) fits the signed product register. Reference:
 * host.hw.requant.requantize (int8 output, 32-bit acc and M, S <= 62).
 *
 * Two register stages: stage 1 holds the product, stage 2 the saturated
 * result. out_valid follows in_valid by 2 cycles; no back-pressure.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module requantize #
(
    parameter ACC_BITS = 32,
    parameter MULT_BITS = 32,
    parameter SHIFT_BITS = 6,
    parameter OUT_BITS = 8
)
(
    input  wire                  clk,
    input  wire                  rst,

    input  wire                  in_valid,
    input  wire [ACC_BITS-1:0]   in_acc,
    input  wire [MULT_BITS-1:0]  mult,
    input  wire [SHIFT_BITS-1:0] shift,

    output wire                  out_valid,
    output wire [OUT_BITS-1:0]   out_data
);

localparam PROD_BITS = ACC_BITS + MULT_BITS;

reg                  s1_valid_reg = 1'b0;
reg [PROD_BITS-1:0]  s1_prod_reg = {PROD_BITS{1'b0}};
reg [SHIFT_BITS-1:0] s1_shift_reg = {SHIFT_BITS{1'b0}};

reg                  s2_valid_reg = 1'b0;
reg [OUT_BITS-1:0]   s2_data_reg = {OUT_BITS{1'b0}};

// product of two's complement operands, sign-extended to the full width
wire signed [PROD_BITS-1:0] acc_ext  = {{MULT_BITS{in_acc[ACC_BITS-1]}}, in_acc};
wire signed [PROD_BITS-1:0] mult_ext = {{ACC_BITS{mult[MULT_BITS-1]}}, mult};
wire signed [PROD_BITS-1:0] prod = acc_ext * mult_ext;

// rounding constant 2^(S-1) for S > 0, else 0
wire [PROD_BITS-1:0] half = (s1_shift_reg == {SHIFT_BITS{1'b0}}) ? {PROD_BITS{1'b0}} :
                            ({{(PROD_BITS-1){1'b0}}, 1'b1} << (s1_shift_reg - 1'b1));
wire signed [PROD_BITS-1:0] rounded = $signed(s1_prod_reg + half) >>> s1_shift_reg;

// saturation bounds, sign-extended to the product width
localparam [PROD_BITS-1:0] OUT_MAX = {{(PROD_BITS-OUT_BITS+1){1'b0}}, {(OUT_BITS-1){1'b1}}};
localparam [PROD_BITS-1:0] OUT_MIN = {{(PROD_BITS-OUT_BITS+1){1'b1}}, {(OUT_BITS-1){1'b0}}};

wire [OUT_BITS-1:0] saturated = (rounded > $signed(OUT_MAX)) ? OUT_MAX[OUT_BITS-1:0] :
                                (rounded < $signed(OUT_MIN)) ? OUT_MIN[OUT_BITS-1:0] :
                                rounded[OUT_BITS-1:0];

always @(posedge clk) begin
    s1_valid_reg <= in_valid;
    s1_prod_reg <= prod;
    s1_shift_reg <= shift;
    s2_valid_reg <= s1_valid_reg;
    s2_data_reg <= saturated;

    if (rst) begin
        s1_valid_reg <= 1'b0;
        s2_valid_reg <= 1'b0;
    end
end

assign out_valid = s2_valid_reg;
assign out_data = s2_data_reg;

endmodule

`resetall
