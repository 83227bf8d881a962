/*
 * FlipLab - balanced binary adder tree (combinational).
 *
 * Sums N signed IN_BITS-wide operands packed into in_data (operand k at
 * bits [k*IN_BITS +: IN_BITS]). The tree has ceil(log2(N)) adder levels;
 * missing leaves (N not a power of two) are zero. Every node is OUT_BITS
 * = IN_BITS + ceil(log2(N)) wide, so no partial sum can overflow.
 * Used for the popcounts of xnor_popcount and the product sum of mac_dense.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module adder_tree #
(
    // number of operands (>= 1)
    parameter N = 8,
    // width of each signed operand
    parameter IN_BITS = 16,
    // width of the exact sum
    parameter OUT_BITS = IN_BITS + $clog2(N)
)
(
    input  wire [N*IN_BITS-1:0] in_data,
    output wire [OUT_BITS-1:0]  out_sum
);

localparam LEVELS = $clog2(N);
localparam LEAVES = 1 << LEVELS;

// level l holds LEAVES >> l partial sums, each OUT_BITS wide; level 0 are the
// sign-extended operands (zero beyond N), level LEVELS is the total
genvar l, k;
generate
    for (l = 0; l <= LEVELS; l = l + 1) begin : level
        wire [(LEAVES >> l)*OUT_BITS-1:0] sums;
        if (l == 0) begin : leaves
            for (k = 0; k < LEAVES; k = k + 1) begin : leaf
                if (k >= N) begin : pad
                    assign sums[k*OUT_BITS +: OUT_BITS] = {OUT_BITS{1'b0}};
                end else if (OUT_BITS > IN_BITS) begin : ext
                    assign sums[k*OUT_BITS +: OUT_BITS] = {{(OUT_BITS-IN_BITS){in_data[k*IN_BITS+IN_BITS-1]}}, in_data[k*IN_BITS +: IN_BITS]};
                end else begin : same
                    assign sums[k*OUT_BITS +: OUT_BITS] = in_data[k*IN_BITS +: OUT_BITS];
                end
            end
        end else begin : adders
            for (k = 0; k < (LEAVES >> l); k = k + 1) begin : adder
                assign sums[k*OUT_BITS +: OUT_BITS] = level[l-1].sums[(2*k)*OUT_BITS +: OUT_BITS] + level[l-1].sums[(2*k+1)*OUT_BITS +: OUT_BITS];
            end
        end
    end
endgenerate

assign out_sum = level[LEVELS].sums[0 +: OUT_BITS];

endmodule

`resetall
