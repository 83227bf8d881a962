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
 * Three register stages: stage 1 holds two partial products (acc times the
 * low and the high half of M: each a pair of 18x18 DSP multipliers), stage 2
 * their sum plus the rounding constant, stage 3 the shifted, saturated
 * result. out_valid follows in_valid by 3 cycles; no back-pressure.
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
localparam LO_BITS = MULT_BITS / 2;
localparam HI_BITS = MULT_BITS - LO_BITS;
localparam PL_BITS = ACC_BITS + LO_BITS + 1;
localparam PH_BITS = ACC_BITS + HI_BITS;

reg                  s1_valid_reg = 1'b0;
reg [PL_BITS-1:0]    s1_pl_reg = {PL_BITS{1'b0}};
reg [PH_BITS-1:0]    s1_ph_reg = {PH_BITS{1'b0}};
reg [SHIFT_BITS-1:0] s1_shift_reg = {SHIFT_BITS{1'b0}};

reg                  s2_valid_reg = 1'b0;
reg [PROD_BITS-1:0]  s2_sum_reg = {PROD_BITS{1'b0}};
reg [SHIFT_BITS-1:0] s2_shift_reg = {SHIFT_BITS{1'b0}};

reg                  s3_valid_reg = 1'b0;
reg [OUT_BITS-1:0]   s3_data_reg = {OUT_BITS{1'b0}};

// acc * M = acc * M_hi * 2^LO_BITS + acc * M_lo (M_lo unsigned, M_hi two's complement)
wire signed [ACC_BITS-1:0] acc_s = in_acc;
wire signed [LO_BITS:0]    m_lo = {1'b0, mult[LO_BITS-1:0]};
wire signed [HI_BITS-1:0]  m_hi = mult[MULT_BITS-1:LO_BITS];
wire signed [PL_BITS-1:0]  pl = acc_s * m_lo;
wire signed [PH_BITS-1:0]  ph = acc_s * m_hi;

// rounding constant 2^(S-1) for S > 0, else 0
wire [PROD_BITS-1:0] half = (s1_shift_reg == {SHIFT_BITS{1'b0}}) ? {PROD_BITS{1'b0}} :
                            ({{(PROD_BITS-1){1'b0}}, 1'b1} << (s1_shift_reg - 1'b1));
wire [PROD_BITS-1:0] pl_ext = {{(PROD_BITS-PL_BITS){s1_pl_reg[PL_BITS-1]}}, s1_pl_reg};
wire [PROD_BITS-1:0] ph_ext = {s1_ph_reg, {LO_BITS{1'b0}}};

wire signed [PROD_BITS-1:0] rounded = $signed(s2_sum_reg) >>> s2_shift_reg;

// saturation: the value fits OUT_BITS when the bits above its sign bit equal the sign bit
wire fits = (&rounded[PROD_BITS-1:OUT_BITS-1]) || !(|rounded[PROD_BITS-1:OUT_BITS-1]);
localparam [OUT_BITS-1:0] OUT_MAX = {1'b0, {(OUT_BITS-1){1'b1}}};
localparam [OUT_BITS-1:0] OUT_MIN = {1'b1, {(OUT_BITS-1){1'b0}}};
wire [OUT_BITS-1:0] saturated = fits ? rounded[OUT_BITS-1:0] :
                                rounded[PROD_BITS-1] ? OUT_MIN : OUT_MAX;

always @(posedge clk) begin
    s1_valid_reg <= in_valid;
    s1_pl_reg <= pl;
    s1_ph_reg <= ph;
    s1_shift_reg <= shift;
    s2_valid_reg <= s1_valid_reg;
    s2_sum_reg <= ph_ext + pl_ext + half;
    s2_shift_reg <= s1_shift_reg;
    s3_valid_reg <= s2_valid_reg;
    s3_data_reg <= saturated;

    if (rst) begin
        s1_valid_reg <= 1'b0;
        s2_valid_reg <= 1'b0;
        s3_valid_reg <= 1'b0;
    end
end

assign out_valid = s3_valid_reg;
assign out_data = s3_data_reg;

endmodule

`resetall
