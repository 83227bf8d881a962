/*
 * FlipLab - synchronous single-clock RAM, one write port and one read port.
 *
 * rd_data holds mem[rd_addr] one cycle after rd_en (read-first on a same
 * address write). Written so FPGA tools infer block RAM; in simulation it is
 * the payload memory the weight loader reads (loaded through the write port).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module sync_ram #
(
    parameter WORD_BITS = 32,
    parameter ADDR_BITS = 10
)
(
    input  wire                 clk,

    input  wire                 wr_en,
    input  wire [ADDR_BITS-1:0] wr_addr,
    input  wire [WORD_BITS-1:0] wr_data,

    input  wire                 rd_en,
    input  wire [ADDR_BITS-1:0] rd_addr,
    output wire [WORD_BITS-1:0] rd_data
);

reg [WORD_BITS-1:0] mem [0:(1 << ADDR_BITS)-1];
reg [WORD_BITS-1:0] rd_data_reg = {WORD_BITS{1'b0}};

always @(posedge clk) begin
    if (wr_en) begin
        mem[wr_addr] <= wr_data;
    end
    if (rd_en) begin
        rd_data_reg <= mem[rd_addr];
    end
end

assign rd_data = rd_data_reg;

endmodule

`resetall
