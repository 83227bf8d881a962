/*
 * FlipLab - accelerator top: runs a layer program over one input vector.
 *
 * Memories (all loaded by the testbench / host before start):
 *   payload RAM   sync_ram of WORD_BITS-bit words holding the image payload
 *                 (WORD_BITS/32 image words per RAM word, little-endian), read
 *                 by lane_loader: LANES weight fields per cycle, parity checked.
 *   program       PROG_REGS 32-bit registers per layer (docs/datapath.md,
 *                 "Layer program"): 0 flags (bit 0 binarized, bit 1 parity,
 *                 bit 2 clipped ReLU, bit 3 output z, bits 12:8 q), 1 n_in,
 *                 2 n_out, 3 weight bit offset, 4 T, 5 lo, 6 hi (two's
 *                 complement), 7 index of the layer's first neuron parameters.
 *   parameters    per neuron: 0 bias (int32), 1 M, 2 S, 3 tau (two's compl.).
 *   activations   two buffers of MAX_N entries (ping-pong, one memory); the
 *                 input vector is written into buffer 0 (while idle), layer l
 *                 reads one and writes the other.
 *
 * int8 layers: mac_dense (LANES 9-bit x 8-bit MACs per cycle, bias, M, S,
 * saturation to 9 bits) then y = clamp(r, lo, hi) and, with the clipped ReLU
 * flag, y = (0 <= y <= T) ? y : 0. Activations are held relative to their
 * zero point (9 bits). Binarized layers: xnor_popcount, out = (z >= tau), or
 * z itself for a layer with the output-z flag (the BNN's last layer).
 *
 * start (when idle) clears the cycle and error counters and runs n_layers
 * layers; done pulses when the last output is written. res_rd_data is entry
 * res_rd_addr of the last layer's output buffer (combinational).
 * cycle_count counts the cycles from the start cycle to done inclusive;
 * err_count the weights whose parity check failed during the run.
 *
 * Timing per layer: n_out * ceil(n_in / LANES) beats at one per cycle, plus
 * 14 cycles for an int8 layer, 9 for a binarized one (LOAD, loader fill 3,
 * the lane register, the unit's latency 7 or 2, write-back, NEXT; one more
 * when the first beat needs a second RAM word): host.hw.inference_cycles.
 *
 * Memories: the program registers in LUT RAM (one per register), the neuron
 * parameters in block RAM read through a register, both activation buffers in
 * one LUT RAM with a single write port; the layer's program registers are
 * latched when it starts, and the loader's beat, the lanes' activations and
 * the neuron's parameters pass one register stage before the MACs.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module accel_top #
(
    parameter LANES = 8,
    // payload RAM word width (a multiple of 32, >= LANES * 9) and depth
    parameter WORD_BITS = 128,
    parameter ADDR_BITS = 10,
    // activation buffer entries (widest layer) and their width
    parameter N_BITS = 7,
    parameter ACT_BITS = 16,
    // neuron parameter entries and program layers
    parameter P_BITS = 8,
    parameter L_BITS = 3,
    // widest weight field
    parameter MAX_Q = 16,
    // derived (do not override)
    parameter WORD_SHIFT = $clog2(WORD_BITS),
    parameter Q_BITS = $clog2(MAX_Q + 1)
)
(
    input  wire                    clk,
    input  wire                    rst,

    // payload RAM write port
    input  wire                    ram_wr_en,
    input  wire [ADDR_BITS-1:0]    ram_wr_addr,
    input  wire [WORD_BITS-1:0]    ram_wr_data,

    // program write port: address = layer * 8 + register
    input  wire                    prog_wr_en,
    input  wire [L_BITS+2:0]       prog_wr_addr,
    input  wire [31:0]             prog_wr_data,
    input  wire [L_BITS:0]         n_layers,

    // neuron parameter write port: address = neuron * 4 + field
    input  wire                    par_wr_en,
    input  wire [P_BITS+1:0]       par_wr_addr,
    input  wire [31:0]             par_wr_data,

    // input vector write port (activation buffer 0)
    input  wire                    act_wr_en,
    input  wire [N_BITS-1:0]       act_wr_addr,
    input  wire [ACT_BITS-1:0]     act_wr_data,

    input  wire                    start,
    output wire                    busy,
    output wire                    done,

    // output vector read port
    input  wire [N_BITS-1:0]       res_rd_addr,
    output wire [ACT_BITS-1:0]     res_rd_data,

    output wire [31:0]             cycle_count,
    output wire [31:0]             err_count
);

localparam COUNT_BITS = 16;
localparam MAX_N = 1 << N_BITS;
localparam MAX_P = 1 << P_BITS;
localparam MAX_L = 1 << L_BITS;
localparam X_BITS = 9;
localparam Z_BITS = 16;
localparam BIT_ADDR_BITS = ADDR_BITS + WORD_SHIFT;

localparam [1:0] S_IDLE = 2'd0, S_LOAD = 2'd1, S_RUN = 2'd2, S_NEXT = 2'd3;

// ---------------------------------------------------------------- memories
// the program: one LUT RAM per register (one read port each); the neuron parameters: block
// RAM with a registered read; the two activation buffers: one LUT RAM of 2*MAX_N entries
// (entry {buffer, index}) with one write port
reg [31:0]         par_bias [0:MAX_P-1];
reg [31:0]         par_mult [0:MAX_P-1];
reg [5:0]          par_shift [0:MAX_P-1];
reg [Z_BITS-1:0]   par_tau [0:MAX_P-1];
reg [ACT_BITS-1:0] act [0:2*MAX_N-1];

reg [1:0]          state_reg = S_IDLE;
reg [L_BITS:0]     layer_reg = {(L_BITS+1){1'b0}};
reg                cur_reg = 1'b0;         // buffer the current layer reads
reg [N_BITS:0]     out_cnt_reg = {(N_BITS+1){1'b0}};
reg [31:0]         cycle_reg = 32'd0;
reg                done_reg = 1'b0;
reg                clear_reg = 1'b0;

// the running layer's program registers, latched when the layer is entered (IDLE start for
// layer 0, NEXT for the following ones), so no program read is on a datapath
reg                     is_binary = 1'b0;
reg                     f_parity = 1'b0;
reg                     f_act = 1'b0;
reg                     f_out_z = 1'b0;
reg [Q_BITS-1:0]        f_q = {Q_BITS{1'b0}};
reg [COUNT_BITS-1:0]    c_n_in = {COUNT_BITS{1'b0}};
reg [COUNT_BITS-1:0]    c_n_out = {COUNT_BITS{1'b0}};
reg [BIT_ADDR_BITS-1:0] c_off = {BIT_ADDR_BITS{1'b0}};
reg [X_BITS-1:0]        c_t = {X_BITS{1'b0}};
reg [X_BITS-1:0]        c_lo = {X_BITS{1'b0}};
reg [X_BITS-1:0]        c_hi = {X_BITS{1'b0}};
reg [P_BITS-1:0]        c_base = {P_BITS{1'b0}};

wire              enter = (state_reg == S_IDLE) ? start : (state_reg == S_NEXT);
wire [L_BITS-1:0] next_idx = (state_reg == S_IDLE) ? {L_BITS{1'b0}} : layer_reg[L_BITS-1:0] + 1'b1;
genvar r;
generate
    for (r = 0; r < 8; r = r + 1) begin : prog
        localparam [2:0] R_REG = r;
        reg [31:0] mem [0:MAX_L-1];
        always @(posedge clk) begin
            if (prog_wr_en && prog_wr_addr[2:0] == R_REG) begin
                mem[prog_wr_addr[L_BITS+2:3]] <= prog_wr_data;
            end
        end
        wire [31:0] rd = mem[next_idx];
    end
endgenerate

wire [31:0] r_flags = prog[0].rd;
wire [31:0] r_n_in  = prog[1].rd;
wire [31:0] r_n_out = prog[2].rd;
wire [31:0] r_off   = prog[3].rd;
wire [31:0] r_t     = prog[4].rd;
wire [31:0] r_lo    = prog[5].rd;
wire [31:0] r_hi    = prog[6].rd;
wire [31:0] r_base  = prog[7].rd;

// ---------------------------------------------------------------- payload and loader
wire                 mem_en;
wire [ADDR_BITS-1:0] mem_addr;
wire [WORD_BITS-1:0] mem_rdata;

sync_ram #(.WORD_BITS(WORD_BITS), .ADDR_BITS(ADDR_BITS)) payload_ram (
    .clk(clk),
    .wr_en(ram_wr_en),
    .wr_addr(ram_wr_addr),
    .wr_data(ram_wr_data),
    .rd_en(mem_en),
    .rd_addr(mem_addr),
    .rd_data(mem_rdata)
);

wire                   ld_busy;
wire                   ld_valid;
wire [LANES*MAX_Q-1:0] ld_data;
wire [LANES-1:0]       ld_mask;
wire [LANES-1:0]       ld_error;
wire                   ld_first;
wire                   ld_last;
wire [COUNT_BITS-1:0]  ld_pos;
wire [COUNT_BITS-1:0]  ld_neuron;

lane_loader #(
    .WORD_BITS(WORD_BITS),
    .ADDR_BITS(ADDR_BITS),
    .LANES(LANES),
    .MAX_Q(MAX_Q),
    .COUNT_BITS(COUNT_BITS),
    .ERR_BITS(32)
) loader (
    .clk(clk),
    .rst(rst),
    .start(state_reg == S_LOAD),
    .cfg_bit_offset(c_off),
    .cfg_q(f_q),
    .cfg_parity(f_parity),
    .cfg_n_in(c_n_in),
    .cfg_n_out(c_n_out),
    .busy(ld_busy),
    .mem_en(mem_en),
    .mem_addr(mem_addr),
    .mem_rdata(mem_rdata),
    .out_valid(ld_valid),
    .out_ready(1'b1),
    .out_data(ld_data),
    .out_mask(ld_mask),
    .out_error(ld_error),
    .out_first(ld_first),
    .out_last(ld_last),
    .out_pos(ld_pos),
    .out_neuron(ld_neuron),
    .err_clear(clear_reg),
    .err_count(err_count)
);

// ---------------------------------------------------------------- lanes
// One register stage between the loader and the units: the beat's weights, the lanes'
// activations (LUT RAM read) and the neuron's parameters (block RAM read) are registered
// together, so the loader's field selection, the activation read and the MACs are in
// different cycles.
wire [P_BITS-1:0] pidx = c_base + ld_neuron[P_BITS-1:0];

reg                     b_valid = 1'b0;
reg                     b_first = 1'b0;
reg                     b_last = 1'b0;
reg [LANES-1:0]         b_mask = {LANES{1'b0}};
reg [LANES-1:0]         b_error = {LANES{1'b0}};
reg [LANES*X_BITS-1:0]  mac_x = {(LANES*X_BITS){1'b0}};
reg [LANES*X_BITS-1:0]  mac_w = {(LANES*X_BITS){1'b0}};
reg [LANES-1:0]         bin_x = {LANES{1'b0}};
reg [LANES-1:0]         bin_w = {LANES{1'b0}};
reg [31:0]              b_bias = 32'd0;
reg [31:0]              b_mult = 32'd0;
reg [5:0]               b_shift = 6'd0;
reg [Z_BITS-1:0]        b_tau = {Z_BITS{1'b0}};

wire [LANES-1:0]        lane_unused;

genvar k;
generate
    for (k = 0; k < LANES; k = k + 1) begin : lane
        localparam integer K_INT = k;
        localparam [N_BITS-1:0] K_N = K_INT[N_BITS-1:0];
        wire [N_BITS-1:0]   idx = ld_pos[N_BITS-1:0] + K_N;
        wire [ACT_BITS-1:0] a = act[{cur_reg, idx}];
        wire [MAX_Q-1:0]    d = ld_data[k*MAX_Q +: MAX_Q];
        always @(posedge clk) begin
            mac_x[k*X_BITS +: X_BITS] <= a[X_BITS-1:0];
            mac_w[k*X_BITS +: X_BITS] <= {d[7], d[7:0]};
            bin_x[k] <= a[0];
            bin_w[k] <= d[0];
        end
        assign lane_unused[k] = ^{a[ACT_BITS-1:X_BITS], d[MAX_Q-1:8]};
    end
endgenerate

always @(posedge clk) begin
    b_valid <= ld_valid;
    b_first <= ld_first;
    b_last <= ld_last;
    b_mask <= ld_mask;
    b_error <= ld_error;
    b_bias <= par_bias[pidx];
    b_mult <= par_mult[pidx];
    b_shift <= par_shift[pidx];
    b_tau <= par_tau[pidx];
    if (rst) begin
        b_valid <= 1'b0;
    end
end

// ---------------------------------------------------------------- int8 path
wire              mac_valid;
wire [31:0]       mac_acc;
wire [X_BITS-1:0] mac_y;

mac_dense #(
    .LANES(LANES),
    .IN_BITS(X_BITS),
    .ACC_BITS(32),
    .MULT_BITS(32),
    .SHIFT_BITS(6),
    .OUT_BITS(X_BITS)
) mac (
    .clk(clk),
    .rst(rst),
    .in_valid(b_valid && !is_binary),
    .in_first(b_first),
    .in_last(b_last),
    .in_x(mac_x),
    .in_w(mac_w),
    .in_mask(b_mask),
    .bias(b_bias),
    .mult(b_mult),
    .shift(b_shift),
    .thresh({X_BITS{1'b0}}),
    .act_en(1'b0),
    .out_valid(mac_valid),
    .out_acc(mac_acc),
    .out_data(mac_y)
);

// clamp to [lo, hi], then the clipped ReLU (clipped_relu.v): y if 0 <= y <= T else 0
wire signed [X_BITS-1:0] y_s = mac_y;
wire signed [X_BITS-1:0] lo_s = c_lo;
wire signed [X_BITS-1:0] hi_s = c_hi;
wire signed [X_BITS-1:0] y_clamped = (y_s < lo_s) ? lo_s : (y_s > hi_s) ? hi_s : y_s;
wire [X_BITS-1:0]        y_act;

clipped_relu #(.DATA_BITS(X_BITS)) clip (
    .enable(f_act),
    .thresh(c_t),
    .in_data(y_clamped),
    .out_data(y_act)
);

// ---------------------------------------------------------------- binarized path
wire              bin_valid;
wire              bin_bit;
wire [Z_BITS-1:0] bin_z;

xnor_popcount #(.LANES(LANES), .Z_BITS(Z_BITS)) xnor_unit (
    .clk(clk),
    .rst(rst),
    .in_valid(b_valid && is_binary),
    .in_first(b_first),
    .in_last(b_last),
    .in_x(bin_x),
    .in_w(bin_w),
    .in_mask(b_mask & ~b_error),
    .tau(b_tau),
    .out_valid(bin_valid),
    .out_bit(bin_bit),
    .out_z(bin_z)
);

// ---------------------------------------------------------------- result write-back
wire                out_valid = mac_valid || bin_valid;
wire [ACT_BITS-1:0] out_value = mac_valid ? {{(ACT_BITS-X_BITS){y_act[X_BITS-1]}}, y_act} :
                                f_out_z ? {{(ACT_BITS-Z_BITS){bin_z[Z_BITS-1]}}, bin_z} :
                                {{(ACT_BITS-1){1'b0}}, bin_bit};
wire [N_BITS-1:0]   out_idx = out_cnt_reg[N_BITS-1:0];
wire                layer_done = (out_cnt_reg == c_n_out[N_BITS:0]);

// the activation memory's one write port: a result while running, the input vector when idle
wire                act_we = out_valid || (act_wr_en && state_reg == S_IDLE);
wire [N_BITS:0]     act_wa = out_valid ? {~cur_reg, out_idx} : {1'b0, act_wr_addr};
wire [ACT_BITS-1:0] act_wd = out_valid ? out_value : act_wr_data;

always @(posedge clk) begin
    done_reg <= 1'b0;
    clear_reg <= 1'b0;

    if (par_wr_en) begin
        case (par_wr_addr[1:0])
            2'd0: par_bias[par_wr_addr[P_BITS+1:2]] <= par_wr_data;
            2'd1: par_mult[par_wr_addr[P_BITS+1:2]] <= par_wr_data;
            2'd2: par_shift[par_wr_addr[P_BITS+1:2]] <= par_wr_data[5:0];
            default: par_tau[par_wr_addr[P_BITS+1:2]] <= par_wr_data[Z_BITS-1:0];
        endcase
    end
    if (act_we) begin
        act[act_wa] <= act_wd;
    end

    if (out_valid) begin
        out_cnt_reg <= out_cnt_reg + 1'b1;
    end

    if (state_reg != S_IDLE) begin
        cycle_reg <= cycle_reg + 1'b1;
    end

    if (enter) begin
        is_binary <= r_flags[0];
        f_parity <= r_flags[1];
        f_act <= r_flags[2];
        f_out_z <= r_flags[3];
        f_q <= r_flags[8 +: Q_BITS];
        c_n_in <= r_n_in[COUNT_BITS-1:0];
        c_n_out <= r_n_out[COUNT_BITS-1:0];
        c_off <= r_off[BIT_ADDR_BITS-1:0];
        c_t <= r_t[X_BITS-1:0];
        c_lo <= r_lo[X_BITS-1:0];
        c_hi <= r_hi[X_BITS-1:0];
        c_base <= r_base[P_BITS-1:0];
    end

    case (state_reg)
        S_IDLE: begin
            if (start) begin
                state_reg <= (n_layers == {(L_BITS+1){1'b0}}) ? S_IDLE : S_LOAD;
                done_reg <= (n_layers == {(L_BITS+1){1'b0}});
                layer_reg <= {(L_BITS+1){1'b0}};
                cur_reg <= 1'b0;
                out_cnt_reg <= {(N_BITS+1){1'b0}};
                cycle_reg <= 32'd1;
                clear_reg <= 1'b1;
            end
        end
        S_LOAD: begin
            state_reg <= S_RUN;
        end
        S_RUN: begin
            if (!ld_busy && layer_done) begin
                state_reg <= S_NEXT;
            end
        end
        default: begin  // S_NEXT: swap buffers, next layer or finish
            cur_reg <= ~cur_reg;
            out_cnt_reg <= {(N_BITS+1){1'b0}};
            layer_reg <= layer_reg + 1'b1;
            if (layer_reg + 1'b1 == n_layers) begin
                state_reg <= S_IDLE;
                done_reg <= 1'b1;
            end else begin
                state_reg <= S_LOAD;
            end
        end
    endcase

    if (rst) begin
        state_reg <= S_IDLE;
        done_reg <= 1'b0;
        cur_reg <= 1'b0;
        out_cnt_reg <= {(N_BITS+1){1'b0}};
    end
end

// register bits above the fields' widths are ignored (named so that lint accepts it)
wire unused_bits = ^{r_flags[31:8+Q_BITS], r_flags[7:4], r_n_in[31:COUNT_BITS],
                     r_n_out[31:COUNT_BITS], r_off[31:BIT_ADDR_BITS], r_t[31:X_BITS],
                     r_lo[31:X_BITS], r_hi[31:X_BITS], r_base[31:P_BITS],
                     ld_pos[COUNT_BITS-1:N_BITS], ld_neuron[COUNT_BITS-1:P_BITS], mac_acc,
                     lane_unused, c_n_out[COUNT_BITS-1:N_BITS+1]};

assign busy = (state_reg != S_IDLE);
assign done = done_reg;
assign res_rd_data = act[{cur_reg, res_rd_addr}];
assign cycle_count = cycle_reg;

endmodule

`resetall
