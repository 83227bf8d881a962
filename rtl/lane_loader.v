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
 * Timing: a bit buffer of 3*WORD_BITS + LANES*MAX_Q bits is refilled by one
 * word per cycle through a registered memory read (read, read register,
 * buffer: two words in flight), so with out_ready high the loader gives one
 * beat per cycle whenever LANES*q <= 5/8 * WORD_BITS (tested; eight
 * parity(int8) fields are 72 of 128 bits), at a lower rate for wider beats.
 * The first beat is valid 3 cycles after the start cycle (4 if it needs a
 * second word). Reads may run past the tensor's last word (never popped;
 * a start drops reads in flight). out_* depend only on registers, and no
 * per-beat path has a multiplier: the lane offsets k*q and the beat sizes
 * are registered at start. A beat's parity errors reach err_count one cycle
 * after the beat is taken.
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

localparam BUF_BITS = 3*WORD_BITS + LANES*MAX_Q;
localparam LVL_BITS = $clog2(BUF_BITS + 1);
localparam CMP_BITS = LVL_BITS + 2;
localparam CNT_BITS = $clog2(LANES + 1);
localparam POP_BITS = $clog2(LANES*MAX_Q + 1);   // a beat's size, <= LANES*MAX_Q
localparam INS_BITS = $clog2(BUF_BITS - WORD_BITS + 1);  // where a word goes, <= BUF - WORD
localparam SKIP_BITS = WORD_SHIFT;

localparam [CMP_BITS-1:0] WORD_CMP = WORD_BITS[CMP_BITS-1:0];
localparam [CMP_BITS-1:0] BUF_CMP = BUF_BITS[CMP_BITS-1:0];
localparam [LVL_BITS-1:0] WORD_LVL = WORD_BITS[LVL_BITS-1:0];
localparam [COUNT_BITS-1:0] LANES_CNT = LANES[COUNT_BITS-1:0];
localparam [CNT_BITS-1:0] LANES_BEAT = LANES[CNT_BITS-1:0];
localparam [COUNT_BITS-1:0] ONE_CNT = {{(COUNT_BITS-1){1'b0}}, 1'b1};

reg                     busy_reg = 1'b0;
reg [SKIP_BITS-1:0]     skip_reg = {SKIP_BITS{1'b0}};
reg [ADDR_BITS-1:0]     addr_reg = {ADDR_BITS{1'b0}};
reg                     rd_first_reg = 1'b0;    // the next read is the layer's first word
reg                     rd_pending_reg = 1'b0;  // mem_rdata valid this cycle
reg                     rd_pend_first_reg = 1'b0;
reg                     word_valid_reg = 1'b0;  // word_reg valid this cycle
reg [WORD_BITS-1:0]     word_reg = {WORD_BITS{1'b0}};
reg [LVL_BITS-1:0]      word_len_reg = {LVL_BITS{1'b0}};
reg [BUF_BITS-1:0]      buf_reg = {BUF_BITS{1'b0}};
reg [LVL_BITS-1:0]      level_reg = {LVL_BITS{1'b0}};
reg [COUNT_BITS-1:0]    pos_reg = {COUNT_BITS{1'b0}};
reg [COUNT_BITS-1:0]    rem_reg = {COUNT_BITS{1'b0}};     // n_in - pos
reg [COUNT_BITS-1:0]    neuron_reg = {COUNT_BITS{1'b0}};
reg [COUNT_BITS-1:0]    n_in_reg = {COUNT_BITS{1'b0}};
reg [COUNT_BITS-1:0]    n_out_reg = {COUNT_BITS{1'b0}};
reg [Q_BITS-1:0]        q_reg = {Q_BITS{1'b0}};
reg                     parity_reg = 1'b0;
reg [ERR_BITS-1:0]      err_count_reg = {ERR_BITS{1'b0}};
reg [CNT_BITS-1:0]      beat_errors_reg = {CNT_BITS{1'b0}};

// the current beat: fields, bits, last of its neuron (registers, updated on each pop)
reg [CNT_BITS-1:0]      cnt_reg = {CNT_BITS{1'b0}};
reg                     last_reg = 1'b0;
reg [LVL_BITS-1:0]      bits_reg = {LVL_BITS{1'b0}};
reg [LVL_BITS-1:0]      rest_reg = {LVL_BITS{1'b0}};     // level_reg - bits_reg
// a neuron's first beat (the same for every neuron of the layer)
reg [CNT_BITS-1:0]      first_cnt_reg = {CNT_BITS{1'b0}};
reg                     first_last_reg = 1'b0;
reg [LVL_BITS-1:0]      first_bits_reg = {LVL_BITS{1'b0}};

// offsets j*q for j = 0..LANES: lane k's field starts at buffer bit j = k, and a beat of j
// fields is j*q bits. Registered at start (q is constant through a layer), so no multiplier
// is on a per-beat path.
reg [LVL_BITS-1:0]      off_reg [0:LANES];

wire [LVL_BITS-1:0] cfg_q_lvl = {{(LVL_BITS-Q_BITS){1'b0}}, cfg_q};
wire [CNT_BITS-1:0] cfg_first_cnt = (cfg_n_in >= LANES_CNT) ? LANES_BEAT : cfg_n_in[CNT_BITS-1:0];
wire [LVL_BITS-1:0] cfg_first_bits = {{(LVL_BITS-CNT_BITS){1'b0}}, cfg_first_cnt} * cfg_q_lvl;

// fields of the beat after this one when it stays in the neuron: min(LANES, rem - LANES)
wire [COUNT_BITS-1:0] rem_next = rem_reg - LANES_CNT;
wire [CNT_BITS-1:0]   cnt_next = (rem_next >= LANES_CNT) ? LANES_BEAT : rem_next[CNT_BITS-1:0];

wire have_beat = busy_reg && (level_reg >= bits_reg);
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
        localparam [CNT_BITS-1:0] K_CNT = K_INT[CNT_BITS-1:0];
        // lane k's field lies in the buffer's low (k+1)*MAX_Q bits (k*q <= k*MAX_Q): the
        // selector spans k*MAX_Q + 1 positions, not the whole buffer
        localparam WIN = (k + 1) * MAX_Q;
        localparam AT_BITS = $clog2(WIN);
        wire [WIN-1:0]      window = buf_reg[WIN-1:0];
        wire [AT_BITS-1:0]  at = off_reg[k][AT_BITS-1:0];
        wire [MAX_Q-1:0]    field = window[at +: MAX_Q] & field_mask;
        wire                odd = ^field;
        assign lane_mask[k] = (cnt_reg > K_CNT);
        assign lane_error[k] = lane_mask[k] && parity_reg && odd;
        assign lane_data[k*MAX_Q +: MAX_Q] = !lane_mask[k] ? {MAX_Q{1'b0}} :
                                             !parity_reg ? field :
                                             odd ? {MAX_Q{1'b0}} : (field >> 1);
    end
endgenerate

// number of lanes in error this beat; added to the counter one cycle later
function [CNT_BITS-1:0] ones;
    input [LANES-1:0] bits;
    integer i;
    begin
        ones = {CNT_BITS{1'b0}};
        for (i = 0; i < LANES; i = i + 1) begin
            ones = ones + {{(CNT_BITS-1){1'b0}}, bits[i]};
        end
    end
endfunction

wire [ERR_BITS-1:0] err_sum = err_count_reg + {{(ERR_BITS-CNT_BITS){1'b0}}, beat_errors_reg};

// refill: room for one more word on top of the bits held and the two reads in flight (memory
// read, output register). Reads may run past the layer's last word: the extra bits are never
// popped, and a start drops the reads in flight.
wire [CMP_BITS-1:0] level_cmp = {{(CMP_BITS-LVL_BITS){1'b0}}, level_reg};
wire [CMP_BITS-1:0] in_flight = (rd_pending_reg ? WORD_CMP : {CMP_BITS{1'b0}}) +
                                (word_valid_reg ? WORD_CMP : {CMP_BITS{1'b0}});
wire                issue = busy_reg && (level_cmp + in_flight + WORD_CMP <= BUF_CMP);

// the arriving word goes on top of the bits that stay: at level - bits when a beat is taken
// (rest_reg holds that difference, so the shift amounts are registers), else at level
// (shift amounts cut to their ranges: a beat is at most LANES*MAX_Q bits, and a word arrives
// only where it fits, at most BUF_BITS - WORD_BITS)
wire [BUF_BITS-1:0]  buf_popped = pop ? (buf_reg >> bits_reg[POP_BITS-1:0]) : buf_reg;
wire [LVL_BITS-1:0]  level_popped = pop ? rest_reg : level_reg;
wire [BUF_BITS-1:0]  word_ext = {{(BUF_BITS-WORD_BITS){1'b0}}, word_reg};
wire [BUF_BITS-1:0]  word_at_rest = word_ext << rest_reg[INS_BITS-1:0];
wire [BUF_BITS-1:0]  word_at_level = word_ext << level_reg[INS_BITS-1:0];
wire [LVL_BITS-1:0]  level_next = word_valid_reg ? (level_popped + word_len_reg) : level_popped;
wire [LVL_BITS-1:0]  bits_next = !pop ? bits_reg : last_reg ? first_bits_reg : off_reg[cnt_next];

integer j;

always @(posedge clk) begin
    // memory read (cycle 1), output register with the first word's skip applied (cycle 2),
    // into the bit buffer (cycle 3)
    rd_pending_reg <= issue;
    rd_pend_first_reg <= issue && rd_first_reg;
    if (issue) begin
        addr_reg <= addr_reg + 1'b1;
        rd_first_reg <= 1'b0;
    end
    word_valid_reg <= rd_pending_reg;
    word_reg <= rd_pend_first_reg ? (mem_rdata >> skip_reg) : mem_rdata;
    word_len_reg <= rd_pend_first_reg ? (WORD_LVL - {{(LVL_BITS-SKIP_BITS){1'b0}}, skip_reg}) : WORD_LVL;

    buf_reg <= !word_valid_reg ? buf_popped : buf_popped | (pop ? word_at_rest : word_at_level);
    level_reg <= level_next;
    bits_reg <= bits_next;
    rest_reg <= level_next - bits_next;

    if (pop) begin
        if (last_reg) begin
            pos_reg <= {COUNT_BITS{1'b0}};
            rem_reg <= n_in_reg;
            cnt_reg <= first_cnt_reg;
            last_reg <= first_last_reg;
            neuron_reg <= neuron_reg + ONE_CNT;
            if (neuron_reg + ONE_CNT == n_out_reg) begin
                busy_reg <= 1'b0;
            end
        end else begin
            pos_reg <= pos_reg + LANES_CNT;
            rem_reg <= rem_next;
            cnt_reg <= cnt_next;
            last_reg <= (rem_next <= LANES_CNT);
        end
    end

    beat_errors_reg <= pop ? ones(lane_error) : {CNT_BITS{1'b0}};
    if (err_clear) begin
        err_count_reg <= {ERR_BITS{1'b0}};
    end else begin
        err_count_reg <= (err_sum < err_count_reg) ? {ERR_BITS{1'b1}} : err_sum;
    end

    if (start && !busy_reg) begin
        busy_reg <= (cfg_n_in != {COUNT_BITS{1'b0}}) && (cfg_n_out != {COUNT_BITS{1'b0}});
        rd_first_reg <= 1'b1;
        rd_pending_reg <= 1'b0;
        word_valid_reg <= 1'b0;
        skip_reg <= cfg_bit_offset[SKIP_BITS-1:0];
        addr_reg <= cfg_bit_offset[BIT_ADDR_BITS-1:WORD_SHIFT];
        buf_reg <= {BUF_BITS{1'b0}};
        level_reg <= {LVL_BITS{1'b0}};
        pos_reg <= {COUNT_BITS{1'b0}};
        rem_reg <= cfg_n_in;
        neuron_reg <= {COUNT_BITS{1'b0}};
        n_in_reg <= cfg_n_in;
        n_out_reg <= cfg_n_out;
        q_reg <= cfg_q;
        parity_reg <= cfg_parity;
        for (j = 0; j <= LANES; j = j + 1) begin
            off_reg[j] <= j[LVL_BITS-1:0] * cfg_q_lvl;
        end
        cnt_reg <= cfg_first_cnt;
        first_cnt_reg <= cfg_first_cnt;
        last_reg <= (cfg_n_in <= LANES_CNT);
        first_last_reg <= (cfg_n_in <= LANES_CNT);
        bits_reg <= cfg_first_bits;
        rest_reg <= {LVL_BITS{1'b0}} - cfg_first_bits;
        first_bits_reg <= cfg_first_bits;
    end

    if (rst) begin
        busy_reg <= 1'b0;
        rd_pending_reg <= 1'b0;
        word_valid_reg <= 1'b0;
        level_reg <= {LVL_BITS{1'b0}};
        pos_reg <= {COUNT_BITS{1'b0}};
        neuron_reg <= {COUNT_BITS{1'b0}};
        err_count_reg <= {ERR_BITS{1'b0}};
        beat_errors_reg <= {CNT_BITS{1'b0}};
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
assign out_last = last_reg;
assign out_pos = pos_reg;
assign out_neuron = neuron_reg;
assign err_count = err_count_reg;

endmodule

`resetall
