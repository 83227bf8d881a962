/*
 * Test harness: lane_loader reading a sync_ram that cocotb fills through the
 * RAM's write port.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module tb_lane_loader #
(
    parameter WORD_BITS = 128,
    parameter ADDR_BITS = 8,
    parameter LANES = 8,
    parameter MAX_Q = 16,
    parameter COUNT_BITS = 16
)
(
    input  wire                                  clk,
    input  wire                                  rst,

    input  wire                                  wr_en,
    input  wire [ADDR_BITS-1:0]                  wr_addr,
    input  wire [WORD_BITS-1:0]                  wr_data,

    input  wire                                  start,
    input  wire [ADDR_BITS+$clog2(WORD_BITS)-1:0] cfg_bit_offset,
    input  wire [$clog2(MAX_Q+1)-1:0]            cfg_q,
    input  wire                                  cfg_parity,
    input  wire [COUNT_BITS-1:0]                 cfg_n_in,
    input  wire [COUNT_BITS-1:0]                 cfg_n_out,
    output wire                                  busy,

    output wire                                  out_valid,
    input  wire                                  out_ready,
    output wire [LANES*MAX_Q-1:0]                out_data,
    output wire [LANES-1:0]                      out_mask,
    output wire [LANES-1:0]                      out_error,
    output wire                                  out_first,
    output wire                                  out_last,
    output wire [COUNT_BITS-1:0]                 out_pos,
    output wire [COUNT_BITS-1:0]                 out_neuron,

    input  wire                                  err_clear,
    output wire [31:0]                           err_count
);

wire                 mem_en;
wire [ADDR_BITS-1:0] mem_addr;
wire [WORD_BITS-1:0] mem_rdata;

sync_ram #(.WORD_BITS(WORD_BITS), .ADDR_BITS(ADDR_BITS)) ram (
    .clk(clk),
    .wr_en(wr_en),
    .wr_addr(wr_addr),
    .wr_data(wr_data),
    .rd_en(mem_en),
    .rd_addr(mem_addr),
    .rd_data(mem_rdata)
);

lane_loader #(
    .WORD_BITS(WORD_BITS),
    .ADDR_BITS(ADDR_BITS),
    .LANES(LANES),
    .MAX_Q(MAX_Q),
    .COUNT_BITS(COUNT_BITS)
) dut (
    .clk(clk),
    .rst(rst),
    .start(start),
    .cfg_bit_offset(cfg_bit_offset),
    .cfg_q(cfg_q),
    .cfg_parity(cfg_parity),
    .cfg_n_in(cfg_n_in),
    .cfg_n_out(cfg_n_out),
    .busy(busy),
    .mem_en(mem_en),
    .mem_addr(mem_addr),
    .mem_rdata(mem_rdata),
    .out_valid(out_valid),
    .out_ready(out_ready),
    .out_data(out_data),
    .out_mask(out_mask),
    .out_error(out_error),
    .out_first(out_first),
    .out_last(out_last),
    .out_pos(out_pos),
    .out_neuron(out_neuron),
    .err_clear(err_clear),
    .err_count(err_count)
);

endmodule

`resetall
