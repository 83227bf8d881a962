/*
 * FlipLab - lane loader: payload words -> LANES q-bit fields per beat ->
 * parity check per lane, cut into neurons.
 *
 * The multi-field variant of weight_loader that feeds a LANES-wide datapath
 * at one beat per cycle. It reads the payload through a synchronous memory
 * port of WORD_BITS-bit words (mem_rdata holds mem[mem_addr] one cycle after
 * mem_en). A WORD_BITS-bit word is WORD_BITS/32 consecutive 32-bit image
 * words side by side (little-endian), so the bit stream is the image's: stream
 * bit i is bit i % WORD_BITS of word i / WORD_BITS.
 *
 * From stream bit cfg_bit_offset it unpacks cfg_n_out neurons of cfg_n_in
 * fields of cfg_q bits (field bit 0 at the lowest stream bit; fields may
 * straddle words). Each beat carries up to LANES consecutive fields of one
 * neuron (lane 0 = the lowest field): ceil(n_in / LANES) beats per neuron,
 * the last one with out_mask covering only the remaining fields.
 *
 * Parity mode (cfg_parity = 1): per lane, the field's q bits must have even
 * parity; data = field >> 1, or 0 with out_error set when the parity is odd.
 * err_count adds the number of lanes in error at each beat taken. Plain mode:
 * data = field, never an error. Reference: host.hw.loader.unpack_fields.
 *
 * Timing: a bit buffer of 2*WORD_BITS + LANES*MAX_Q bits is refilled by one
 * word per cycle, so with out_ready high the loader gives one beat per cycle
 * whenever LANES*q <= 5/8 * WORD_BITS (tested; eight parity(int8) fields are
 * 72 of 128 bits), at a lower rate for wider beats. The first beat is valid
 * 2 cycles after the start cycle (3 if it needs a second word). out_* depend
 * only on registers.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module lane_loader #
(
    // memory word width: a multiple of 32, a power of two
    parameter WORD_BITS = 128,
    // word address width
    parameter ADDR_BITS = 10,
    // fields per beat
    parameter LANES = 8,
    // widest field (bits)
    parameter MAX_Q = 16,
    // width of the field / neuron counters
    parameter COUNT_BITS = 16,
    // width of the stream bit counter (skip + all fields), >= COUNT_BITS
    parameter TOTAL_BITS = 32,
    // width of the detected-error counter (saturates at all ones)
    parameter ERR_BITS = 32,
    // derived widths (do not override)
    parameter WORD_SHIFT = $clog2(WORD_BITS),
    parameter BIT_ADDR_BITS = ADDR_BITS + WORD_SHIFT,
    parameter Q_BITS = $clog2(MAX_Q + 1)
)
(
    input  wire                      clk,
    input  wire                      rst,

    // configuration, sampled on start when idle
    input  wire                      start,
    input  wire [BIT_ADDR_BITS-1:0]  cfg_bit_offset,
    input  wire [Q_BITS-1:0]         cfg_q,
    input  wire                      cfg_parity,
    input  wire [COUNT_BITS-1:0]     cfg_n_in,
    input  wire [COUNT_BITS-1:0]     cfg_n_out,
    output wire                      busy,

    // synchronous memory read port
    output wire                      mem_en,
    output wire [ADDR_BITS-1:0]      mem_addr,
    input  wire [WORD_BITS-1:0]      mem_rdata,

    // beat stream
    output wire                      out_valid,
    input  wire                      out_ready,
    output wire [LANES*MAX_Q-1:0]    out_data,
    output wire [LANES-1:0]          out_mask,
    output wire [LANES-1:0]          out_error,
    output wire                      out_first,
    output wire                      out_last,
    output wire [COUNT_BITS-1:0]     out_pos,
    output wire [COUNT_BITS-1:0]     out_neuron,

    // detected parity errors
    input  wire                      err_clear,
    output wire [ERR_BITS-1:0]       err_count
);

localparam BUF_BITS = 2*WORD_BITS + LANES*MAX_Q;
localparam LVL_BITS = $clog2(BUF_BITS + 1);
localparam CMP_BITS = LVL_BITS + 2;
localparam CNT_BITS = $clog2(LANES + 1);
localparam SKIP_BITS = WORD_SHIFT;

localparam [CMP_BITS-1:0] WORD_CMP = WORD_BITS[CMP_BITS-1:0];
localparam [CMP_BITS-1:0] BUF_CMP = BUF_BITS[CMP_BITS-1:0];
localparam [LVL_BITS-1:0] WORD_LVL = WORD_BITS[LVL_BITS-1:0];
localparam [COUNT_BITS-1:0] LANES_CNT = LANES[COUNT_BITS-1:0];
localparam WORD_ROUND_INT = WORD_BITS - 1;
localparam [TOTAL_BITS-1:0] WORD_ROUND = WORD_ROUND_INT[TOTAL_BITS-1:0];
localparam [COUNT_BITS-1:0] ONE_CNT = {{(COUNT_BITS-1){1'b0}}, 1'b1};

reg                     busy_reg = 1'b0;
reg                     first_word_reg = 1'b0;
reg [SKIP_BITS-1:0]     skip_reg = {SKIP_BITS{1'b0}};
reg [ADDR_BITS-1:0]     addr_reg = {ADDR_BITS{1'b0}};
reg [TOTAL_BITS-1:0]    words_left_reg = {TOTAL_BITS{1'b0}};
reg                     rd_pending_reg = 1'b0;
reg [BUF_BITS-1:0]      buf_reg = {BUF_BITS{1'b0}};
reg [LVL_BITS-1:0]      level_reg = {LVL_BITS{1'b0}};
reg [COUNT_BITS-1:0]    pos_reg = {COUNT_BITS{1'b0}};
reg [COUNT_BITS-1:0]    neuron_reg = {COUNT_BITS{1'b0}};
reg [COUNT_BITS-1:0]    n_in_reg = {COUNT_BITS{1'b0}};
reg [COUNT_BITS-1:0]    n_out_reg = {COUNT_BITS{1'b0}};
reg [Q_BITS-1:0]        q_reg = {Q_BITS{1'b0}};
reg                     parity_reg = 1'b0;
reg [ERR_BITS-1:0]      err_count_reg = {ERR_BITS{1'b0}};

// fields in this beat: min(LANES, n_in - pos)
wire [COUNT_BITS-1:0] remaining = n_in_reg - pos_reg;
wire [CNT_BITS-1:0]   beat_cnt = (remaining >= LANES_CNT) ? LANES[CNT_BITS-1:0] : remaining[CNT_BITS-1:0];
wire [LVL_BITS-1:0]   q_lvl = {{(LVL_BITS-Q_BITS){1'b0}}, q_reg};
wire [LVL_BITS-1:0]   beat_bits = {{(LVL_BITS-CNT_BITS){1'b0}}, beat_cnt} * q_lvl;
wire                  beat_last = (remaining == {{(COUNT_BITS-CNT_BITS){1'b0}}, beat_cnt});

wire have_beat = busy_reg && (level_reg >= beat_bits);
wire pop = have_beat && out_ready;

// lanes: field k at buffer bits [k*q, k*q + q)
wire [MAX_Q-1:0]       field_mask = ~({MAX_Q{1'b1}} << q_reg);
wire [LANES*MAX_Q-1:0] lane_data;
wire [LANES-1:0]       lane_mask;
wire [LANES-1:0]       lane_error;

genvar k;
generate
    for (k = 0; k < LANES; k = k + 1) begin : lane
        localparam integer K_INT = k;
        localparam [LVL_BITS-1:0] K_LVL = K_INT[LVL_BITS-1:0];
        wire [LVL_BITS-1:0] offset = K_LVL * q_lvl;
        wire [MAX_Q-1:0]    field = buf_reg[offset +: MAX_Q] & field_mask;
        wire                odd = ^field;
        assign lane_mask[k] = ({{(LVL_BITS-CNT_BITS){1'b0}}, beat_cnt} > K_LVL);
        assign lane_error[k] = lane_mask[k] && parity_reg && odd;
        assign lane_data[k*MAX_Q +: MAX_Q] = !lane_mask[k] ? {MAX_Q{1'b0}} :
                                             !parity_reg ? field :
                                             odd ? {MAX_Q{1'b0}} : (field >> 1);
    end
endgenerate

// number of lanes in error this beat
function [ERR_BITS-1:0] ones;
    input [LANES-1:0] bits;
    integer i;
    begin
        ones = {ERR_BITS{1'b0}};
        for (i = 0; i < LANES; i = i + 1) begin
            ones = ones + {{(ERR_BITS-1){1'b0}}, bits[i]};
        end
    end
endfunction

wire [ERR_BITS-1:0] beat_errors = ones(lane_error);
wire [ERR_BITS-1:0] err_sum = err_count_reg + beat_errors;

// refill: room for one more word on top of the bits held and in flight
wire [CMP_BITS-1:0] level_cmp = {{(CMP_BITS-LVL_BITS){1'b0}}, level_reg};
wire                issue = busy_reg && (words_left_reg != {TOTAL_BITS{1'b0}}) &&
                            (level_cmp + (rd_pending_reg ? WORD_CMP : {CMP_BITS{1'b0}}) + WORD_CMP <= BUF_CMP);

wire [BUF_BITS-1:0]  buf_popped = pop ? (buf_reg >> beat_bits) : buf_reg;
wire [LVL_BITS-1:0]  level_popped = pop ? (level_reg - beat_bits) : level_reg;
wire [WORD_BITS-1:0] word_in = first_word_reg ? (mem_rdata >> skip_reg) : mem_rdata;
wire [LVL_BITS-1:0]  word_len = first_word_reg ? (WORD_LVL - {{(LVL_BITS-SKIP_BITS){1'b0}}, skip_reg}) : WORD_LVL;
wire [BUF_BITS-1:0]  word_ext = {{(BUF_BITS-WORD_BITS){1'b0}}, word_in};

// words to read for a layer: ceil((skip + n_in*n_out*q) / WORD_BITS)
wire [TOTAL_BITS-1:0] all_bits = {{(TOTAL_BITS-COUNT_BITS){1'b0}}, cfg_n_in} *
                                 {{(TOTAL_BITS-COUNT_BITS){1'b0}}, cfg_n_out} *
                                 {{(TOTAL_BITS-Q_BITS){1'b0}}, cfg_q};
wire [TOTAL_BITS-1:0] start_bits = {{(TOTAL_BITS-SKIP_BITS){1'b0}}, cfg_bit_offset[SKIP_BITS-1:0]} +
                                   all_bits;
wire [TOTAL_BITS-1:0] start_words = (start_bits + WORD_ROUND) >> WORD_SHIFT;

always @(posedge clk) begin
    rd_pending_reg <= issue;
    if (issue) begin
        addr_reg <= addr_reg + 1'b1;
        words_left_reg <= words_left_reg - 1'b1;
    end

    if (rd_pending_reg) begin
        buf_reg <= buf_popped | (word_ext << level_popped);
        level_reg <= level_popped + word_len;
        first_word_reg <= 1'b0;
    end else begin
        buf_reg <= buf_popped;
        level_reg <= level_popped;
    end

    if (pop) begin
        if (beat_last) begin
            pos_reg <= {COUNT_BITS{1'b0}};
            neuron_reg <= neuron_reg + ONE_CNT;
            if (neuron_reg + ONE_CNT == n_out_reg) begin
                busy_reg <= 1'b0;
            end
        end else begin
            pos_reg <= pos_reg + LANES_CNT;
        end
    end

    if (err_clear) begin
        err_count_reg <= {ERR_BITS{1'b0}};
    end else if (pop) begin
        err_count_reg <= (err_sum < err_count_reg) ? {ERR_BITS{1'b1}} : err_sum;
    end

    if (start && !busy_reg) begin
        busy_reg <= (cfg_n_in != {COUNT_BITS{1'b0}}) && (cfg_n_out != {COUNT_BITS{1'b0}});
        first_word_reg <= 1'b1;
        skip_reg <= cfg_bit_offset[SKIP_BITS-1:0];
        addr_reg <= cfg_bit_offset[BIT_ADDR_BITS-1:WORD_SHIFT];
        words_left_reg <= start_words;
        buf_reg <= {BUF_BITS{1'b0}};
        level_reg <= {LVL_BITS{1'b0}};
        pos_reg <= {COUNT_BITS{1'b0}};
        neuron_reg <= {COUNT_BITS{1'b0}};
        n_in_reg <= cfg_n_in;
        n_out_reg <= cfg_n_out;
        q_reg <= cfg_q;
        parity_reg <= cfg_parity;
    end

    if (rst) begin
        busy_reg <= 1'b0;
        rd_pending_reg <= 1'b0;
        words_left_reg <= {TOTAL_BITS{1'b0}};
        level_reg <= {LVL_BITS{1'b0}};
        pos_reg <= {COUNT_BITS{1'b0}};
        neuron_reg <= {COUNT_BITS{1'b0}};
        err_count_reg <= {ERR_BITS{1'b0}};
    end
end

assign busy = busy_reg;
assign mem_en = issue;
assign mem_addr = addr_reg;
assign out_valid = have_beat;
assign out_data = lane_data;
assign out_mask = lane_mask;
assign out_error = lane_error;
assign out_first = (pos_reg == {COUNT_BITS{1'b0}});
assign out_last = beat_last;
assign out_pos = pos_reg;
assign out_neuron = neuron_reg;
assign err_count = err_count_reg;

endmodule

`resetall
