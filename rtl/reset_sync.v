/*
 * FlipLab - reset synchroniser: asserts asynchronously, releases
 * synchronously, STAGES clock cycles after arst_in falls. Also holds reset
 * for STAGES cycles after configuration (the registers start at 1), so a
 * design needs no other power-on reset.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module reset_sync #
(
    parameter STAGES = 4
)
(
    input  wire clk,
    input  wire arst_in,
    output wire rst_out
);

reg [STAGES-1:0] sync_reg = {STAGES{1'b1}};

always @(posedge clk or posedge arst_in) begin
    if (arst_in) begin
        sync_reg <= {STAGES{1'b1}};
    end else begin
        sync_reg <= {sync_reg[STAGES-2:0], 1'b0};
    end
end

assign rst_out = sync_reg[STAGES-1];

endmodule

`resetall
