/*
 * FlipLab - binarized neuron: XNOR + popcount tree + accumulator + threshold.
 *
 * Bits encode +1 (1) and -1 (0). One neuron's fan-in arrives as beats of
 * LANES input bits x and weight bits w with a lane mask m (0 for lanes past
 * the fan-in and for weights nulled after a failed parity check). Per beat
 *
 *   z_beat = 2 * popcount(~(x ^ w) & m) - popcount(m)
 *
 * so a masked lane contributes 0 (neither +1 nor -1). z accumulates over the
 * beats from in_first to in_last; on the in_last beat the neuron output is
 *
 *   out_bit = (z >= tau)         (greater OR EQUAL; tau sampled with in_last)
 *
 * Reference: host.hw.dense.xnor_popcount / binary_dense.
 *
 * Timing: one beat per cycle, no back-pressure. out_valid pulses 2 cycles
 * after the in_last beat (stage 1: popcounts, stage 2: accumulate/compare).
 * A neuron of n inputs takes ceil(n / LANES) beats; neurons may follow each
 * other back to back.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module xnor_popcount #
(
    // bits per beat
    parameter LANES = 32,
    // signed width of z and tau (|z| <= fan-in; 16 bits covers fan-in < 32768)
    parameter Z_BITS = 16
)
(
    input  wire                 clk,
    input  wire                 rst,

    input  wire                 in_valid,
    input  wire                 in_first,
    input  wire                 in_last,
    input  wire [LANES-1:0]     in_x,
    input  wire [LANES-1:0]     in_w,
    input  wire [LANES-1:0]     in_mask,
    input  wire [Z_BITS-1:0]    tau,

    output wire                 out_valid,
    output wire                 out_bit,
    output wire [Z_BITS-1:0]    out_z
);

// counts 0..LANES as non-negative signed values (the adder tree is signed);
// each bit enters the tree zero-extended to a 2-bit signed operand
localparam CNT_BITS = $clog2(LANES + 1) + 1;

wire [LANES-1:0] agree = ~(in_x ^ in_w) & in_mask;

wire [2*LANES-1:0] agree_ops;
wire [2*LANES-1:0] mask_ops;

genvar i;
generate
    for (i = 0; i < LANES; i = i + 1) begin : ops
        assign agree_ops[2*i +: 2] = {1'b0, agree[i]};
        assign mask_ops[2*i +: 2] = {1'b0, in_mask[i]};
    end
endgenerate

wire [CNT_BITS-1:0] agree_sum;
wire [CNT_BITS-1:0] mask_sum;

adder_tree #(.N(LANES), .IN_BITS(2), .OUT_BITS(CNT_BITS)) agree_tree (
    .in_data(agree_ops),
    .out_sum(agree_sum)
);

adder_tree #(.N(LANES), .IN_BITS(2), .OUT_BITS(CNT_BITS)) mask_tree (
    .in_data(mask_ops),
    .out_sum(mask_sum)
);

// stage 1: popcounts of the beat
reg                s1_valid_reg = 1'b0;
reg                s1_first_reg = 1'b0;
reg                s1_last_reg = 1'b0;
reg [CNT_BITS-1:0] s1_agree_reg = {CNT_BITS{1'b0}};
reg [CNT_BITS-1:0] s1_count_reg = {CNT_BITS{1'b0}};
reg [Z_BITS-1:0]   s1_tau_reg = {Z_BITS{1'b0}};

// stage 2: running z and the neuron result
reg [Z_BITS-1:0]   z_reg = {Z_BITS{1'b0}};
reg                out_valid_reg = 1'b0;
reg                out_bit_reg = 1'b0;
reg [Z_BITS-1:0]   out_z_reg = {Z_BITS{1'b0}};

// z contribution of the beat: 2*agree - count (in [-LANES, LANES])
wire [Z_BITS-1:0] agree_ext = {{(Z_BITS-CNT_BITS){1'b0}}, s1_agree_reg};
wire [Z_BITS-1:0] count_ext = {{(Z_BITS-CNT_BITS){1'b0}}, s1_count_reg};
wire [Z_BITS-1:0] beat_z = (agree_ext << 1) - count_ext;
wire [Z_BITS-1:0] z_next = (s1_first_reg ? {Z_BITS{1'b0}} : z_reg) + beat_z;

always @(posedge clk) begin
    s1_valid_reg <= in_valid;
    s1_first_reg <= in_first;
    s1_last_reg <= in_last;
    s1_agree_reg <= agree_sum;
    s1_count_reg <= mask_sum;
    s1_tau_reg <= tau;

    out_valid_reg <= 1'b0;
    if (s1_valid_reg) begin
        z_reg <= z_next;
        if (s1_last_reg) begin
            out_valid_reg <= 1'b1;
            out_z_reg <= z_next;
            out_bit_reg <= ($signed(z_next) >= $signed(s1_tau_reg));
        end
    end

    if (rst) begin
        s1_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
    end
end

assign out_valid = out_valid_reg;
assign out_bit = out_bit_reg;
assign out_z = out_z_reg;

endmodule

`resetall
