/*
 * FlipLab - int8 dense neuron: LANES MACs per cycle, bias, requantisation,
 * saturation and clipped ReLU.
 *
 * One neuron's fan-in arrives as beats of LANES (x, w) pairs, signed
 * IN_BITS each, with a lane mask (0 for lanes past the fan-in). Per neuron
 *
 *   acc = wrap_ACC_BITS(bias + sum over beats and lanes of x*w)
 *   y   = clipped_relu(saturate(round_half_up(acc * M / 2^S)), T)   (act_en = 1)
 *   y   = saturate(round_half_up(acc * M / 2^S))                    (act_en = 0)
 *
 * bias is sampled with the in_first beat; mult (M), shift (S), thresh (T)
 * and act_en with the in_last beat (a one-beat neuron gives both at once),
 * so per-channel M/S and back-to-back neurons need no extra handshake.
 * Reference: host.hw.dense.dense_int8.
 *
 * Timing: one beat per cycle, no back-pressure. Pipeline: stage 0 registers
 * the lanes' products, stage 1 their sum, stage 2 accumulates, stages 3-5 are
 * requantize, stage 6 the clipped ReLU output register: out_valid pulses 7
 * cycles after the in_last beat. A neuron of n inputs takes ceil(n/LANES)
 * beats.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module mac_dense #
(
    parameter LANES = 8,
    // signed width of inputs and weights
    parameter IN_BITS = 8,
    // accumulator width (two's complement, wraps)
    parameter ACC_BITS = 32,
    parameter MULT_BITS = 32,
    parameter SHIFT_BITS = 6,
    // signed output width
    parameter OUT_BITS = 8
)
(
    input  wire                     clk,
    input  wire                     rst,

    input  wire                     in_valid,
    input  wire                     in_first,
    input  wire                     in_last,
    input  wire [LANES*IN_BITS-1:0] in_x,
    input  wire [LANES*IN_BITS-1:0] in_w,
    input  wire [LANES-1:0]         in_mask,

    // per-neuron configuration (see sampling rules above)
    input  wire [ACC_BITS-1:0]      bias,
    input  wire [MULT_BITS-1:0]     mult,
    input  wire [SHIFT_BITS-1:0]    shift,
    input  wire [OUT_BITS-1:0]      thresh,
    input  wire                     act_en,

    output wire                     out_valid,
    output wire [ACC_BITS-1:0]      out_acc,
    output wire [OUT_BITS-1:0]      out_data
);

localparam PROD_BITS = 2*IN_BITS;
localparam SUM_BITS = PROD_BITS + $clog2(LANES);

// stage 0: the lanes' products (0 for masked lanes) and the beat's configuration
reg                      s0_valid_reg = 1'b0;
reg                      s0_first_reg = 1'b0;
reg                      s0_last_reg = 1'b0;
reg [LANES*PROD_BITS-1:0] s0_prod_reg = {(LANES*PROD_BITS){1'b0}};
reg [ACC_BITS-1:0]       s0_bias_reg = {ACC_BITS{1'b0}};
reg [MULT_BITS-1:0]      s0_mult_reg = {MULT_BITS{1'b0}};
reg [SHIFT_BITS-1:0]     s0_shift_reg = {SHIFT_BITS{1'b0}};
reg [OUT_BITS-1:0]       s0_thresh_reg = {OUT_BITS{1'b0}};
reg                      s0_act_reg = 1'b0;

integer i;

genvar g;
generate
    for (g = 0; g < LANES; g = g + 1) begin : lane
        wire signed [PROD_BITS-1:0] prod = $signed(in_x[g*IN_BITS +: IN_BITS]) * $signed(in_w[g*IN_BITS +: IN_BITS]);
        always @(posedge clk) begin
            s0_prod_reg[g*PROD_BITS +: PROD_BITS] <= in_mask[g] ? prod : {PROD_BITS{1'b0}};
        end
    end
endgenerate

// beat sum of the registered products. One process computes the whole sum: it synthesises to
// the same adders as a structural tree, and Icarus evaluates it once per input change instead
// of once per partial sum (about 3x faster accel_top simulations).
reg signed [SUM_BITS-1:0] beat_sum;

always @* begin
    beat_sum = {SUM_BITS{1'b0}};
    for (i = 0; i < LANES; i = i + 1) begin
        beat_sum = beat_sum + {{(SUM_BITS-PROD_BITS){s0_prod_reg[i*PROD_BITS+PROD_BITS-1]}},
                               s0_prod_reg[i*PROD_BITS +: PROD_BITS]};
    end
end

// stage 1: beat sum and the configuration travelling with it
reg                  s1_valid_reg = 1'b0;
reg                  s1_first_reg = 1'b0;
reg                  s1_last_reg = 1'b0;
reg [SUM_BITS-1:0]   s1_sum_reg = {SUM_BITS{1'b0}};
reg [ACC_BITS-1:0]   s1_bias_reg = {ACC_BITS{1'b0}};
reg [MULT_BITS-1:0]  s1_mult_reg = {MULT_BITS{1'b0}};
reg [SHIFT_BITS-1:0] s1_shift_reg = {SHIFT_BITS{1'b0}};
reg [OUT_BITS-1:0]   s1_thresh_reg = {OUT_BITS{1'b0}};
reg                  s1_act_reg = 1'b0;

// stage 2: accumulator and the finished neuron
reg [ACC_BITS-1:0]   acc_reg = {ACC_BITS{1'b0}};
reg                  s2_valid_reg = 1'b0;
reg [ACC_BITS-1:0]   s2_acc_reg = {ACC_BITS{1'b0}};
reg [MULT_BITS-1:0]  s2_mult_reg = {MULT_BITS{1'b0}};
reg [SHIFT_BITS-1:0] s2_shift_reg = {SHIFT_BITS{1'b0}};
reg [OUT_BITS-1:0]   s2_thresh_reg = {OUT_BITS{1'b0}};
reg                  s2_act_reg = 1'b0;

// stages 3-5 run inside requantize; these follow them
reg [ACC_BITS-1:0]   s3_acc_reg = {ACC_BITS{1'b0}};
reg [OUT_BITS-1:0]   s3_thresh_reg = {OUT_BITS{1'b0}};
reg                  s3_act_reg = 1'b0;
reg [ACC_BITS-1:0]   s4_acc_reg = {ACC_BITS{1'b0}};
reg [OUT_BITS-1:0]   s4_thresh_reg = {OUT_BITS{1'b0}};
reg                  s4_act_reg = 1'b0;
reg [ACC_BITS-1:0]   s5_acc_reg = {ACC_BITS{1'b0}};
reg [OUT_BITS-1:0]   s5_thresh_reg = {OUT_BITS{1'b0}};
reg                  s5_act_reg = 1'b0;

// stage 6: output
reg                  out_valid_reg = 1'b0;
reg [ACC_BITS-1:0]   out_acc_reg = {ACC_BITS{1'b0}};
reg [OUT_BITS-1:0]   out_data_reg = {OUT_BITS{1'b0}};

wire [ACC_BITS-1:0] sum_ext = {{(ACC_BITS-SUM_BITS){s1_sum_reg[SUM_BITS-1]}}, s1_sum_reg};
wire [ACC_BITS-1:0] acc_next = (s1_first_reg ? s1_bias_reg : acc_reg) + sum_ext;

wire                rq_valid;
wire [OUT_BITS-1:0] rq_data;
wire [OUT_BITS-1:0] act_data;

requantize #(
    .ACC_BITS(ACC_BITS),
    .MULT_BITS(MULT_BITS),
    .SHIFT_BITS(SHIFT_BITS),
    .OUT_BITS(OUT_BITS)
) requantize_inst (
    .clk(clk),
    .rst(rst),
    .in_valid(s2_valid_reg),
    .in_acc(s2_acc_reg),
    .mult(s2_mult_reg),
    .shift(s2_shift_reg),
    .out_valid(rq_valid),
    .out_data(rq_data)
);

clipped_relu #(.DATA_BITS(OUT_BITS)) clipped_relu_inst (
    .enable(s5_act_reg),
    .thresh(s5_thresh_reg),
    .in_data(rq_data),
    .out_data(act_data)
);

always @(posedge clk) begin
    s0_valid_reg <= in_valid;
    s0_first_reg <= in_first;
    s0_last_reg <= in_last;
    if (in_valid && in_first) begin
        s0_bias_reg <= bias;
    end
    if (in_valid && in_last) begin
        s0_mult_reg <= mult;
        s0_shift_reg <= shift;
        s0_thresh_reg <= thresh;
        s0_act_reg <= act_en;
    end

    s1_valid_reg <= s0_valid_reg;
    s1_first_reg <= s0_first_reg;
    s1_last_reg <= s0_last_reg;
    s1_sum_reg <= beat_sum;
    if (s0_valid_reg && s0_first_reg) begin
        s1_bias_reg <= s0_bias_reg;
    end
    if (s0_valid_reg && s0_last_reg) begin
        s1_mult_reg <= s0_mult_reg;
        s1_shift_reg <= s0_shift_reg;
        s1_thresh_reg <= s0_thresh_reg;
        s1_act_reg <= s0_act_reg;
    end

    s2_valid_reg <= 1'b0;
    if (s1_valid_reg) begin
        acc_reg <= acc_next;
        if (s1_last_reg) begin
            s2_valid_reg <= 1'b1;
            s2_acc_reg <= acc_next;
            s2_mult_reg <= s1_mult_reg;
            s2_shift_reg <= s1_shift_reg;
            s2_thresh_reg <= s1_thresh_reg;
            s2_act_reg <= s1_act_reg;
        end
    end

    s3_acc_reg <= s2_acc_reg;
    s3_thresh_reg <= s2_thresh_reg;
    s3_act_reg <= s2_act_reg;
    s4_acc_reg <= s3_acc_reg;
    s4_thresh_reg <= s3_thresh_reg;
    s4_act_reg <= s3_act_reg;
    s5_acc_reg <= s4_acc_reg;
    s5_thresh_reg <= s4_thresh_reg;
    s5_act_reg <= s4_act_reg;

    out_valid_reg <= rq_valid;
    out_acc_reg <= s5_acc_reg;
    out_data_reg <= act_data;

    if (rst) begin
        s0_valid_reg <= 1'b0;
        s1_valid_reg <= 1'b0;
        s2_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
    end
end

assign out_valid = out_valid_reg;
assign out_acc = out_acc_reg;
assign out_data = out_data_reg;

endmodule

`resetall
