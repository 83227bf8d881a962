/*
 * FlipLab - UART transmitter, 8N1 by default (start bit 0, DATA_BITS data
 * bits least significant first, one stop bit 1). Each bit lasts CLK_DIV
 * clock cycles (CLK_DIV = f_clk / baud rate, >= 2). txd idles high.
 *
 * Input is a valid/ready byte stream: s_ready is high while idle and in the
 * last cycle of a stop bit, a byte is taken when s_valid && s_ready, and a
 * frame lasts (DATA_BITS + 2) * CLK_DIV cycles. With s_valid held high,
 * frames follow each other with no idle cycle between them.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module uart_tx #
(
    parameter CLK_DIV = 868,
    parameter DATA_BITS = 8
)
(
    input  wire                 clk,
    input  wire                 rst,

    input  wire                 s_valid,
    output wire                 s_ready,
    input  wire [DATA_BITS-1:0] s_data,

    output wire                 txd,
    output wire                 busy
);

localparam DIV_BITS = $clog2(CLK_DIV);
localparam BIT_BITS = $clog2(DATA_BITS + 2);
localparam DIV_LAST_INT = CLK_DIV - 1;
localparam [DIV_BITS-1:0] DIV_LAST = DIV_LAST_INT[DIV_BITS-1:0];
localparam FRAME_LAST_INT = DATA_BITS + 1;
localparam [BIT_BITS-1:0] FRAME_LAST = FRAME_LAST_INT[BIT_BITS-1:0];

reg                 busy_reg = 1'b0;
reg [DATA_BITS+1:0] frame_reg = {(DATA_BITS+2){1'b1}};  // stop, data, start (LSB first)
reg [DIV_BITS-1:0]  div_reg = {DIV_BITS{1'b0}};
reg [BIT_BITS-1:0]  bit_reg = {BIT_BITS{1'b0}};

wire last_cycle = busy_reg && (div_reg == DIV_LAST) && (bit_reg == FRAME_LAST);
wire take = s_valid && (!busy_reg || last_cycle);

always @(posedge clk) begin
    if (take) begin
        busy_reg <= 1'b1;
        frame_reg <= {1'b1, s_data, 1'b0};
        div_reg <= {DIV_BITS{1'b0}};
        bit_reg <= {BIT_BITS{1'b0}};
    end else if (!busy_reg) begin
        div_reg <= {DIV_BITS{1'b0}};
    end else if (div_reg == DIV_LAST) begin
        div_reg <= {DIV_BITS{1'b0}};
        frame_reg <= {1'b1, frame_reg[DATA_BITS+1:1]};
        if (bit_reg == FRAME_LAST) begin
            busy_reg <= 1'b0;
        end else begin
            bit_reg <= bit_reg + 1'b1;
        end
    end else begin
        div_reg <= div_reg + 1'b1;
    end

    if (rst) begin
        busy_reg <= 1'b0;
        frame_reg <= {(DATA_BITS+2){1'b1}};
    end
end

assign s_ready = !busy_reg || last_cycle;
assign txd = busy_reg ? frame_reg[0] : 1'b1;
assign busy = busy_reg;

endmodule

`resetall
