/*
 * FlipLab - weight loader: payload words -> q-bit fields -> parity check.
 *
 * Reads the payload through a synchronous memory port (mem_rdata holds
 * mem[mem_addr] one cycle after mem_en) as a little-endian bit stream:
 * stream bit i is bit i % WORD_BITS of word i / WORD_BITS. Starting at stream
 * bit cfg_bit_offset it unpacks cfg_count consecutive fields of cfg_q bits
 * (field bit 0, the least significant, at the lowest stream bit; a field may
 * straddle two words).
 *
 * Parity mode (cfg_parity = 1): the field's q bits must have even parity;
 * field bit 0 is the check bit and data = field >> 1 (q - 1 bits). A field
 * with odd parity is a detected error: out_data = 0, out_error = 1, and
 * err_count increments. Plain mode passes the field through (out_error = 0).
 * Reference: host.hw.loader.unpack_fields.
 *
 * Output: a valid/ready stream (out_data zero-extended to MAX_Q bits,
 * out_last on the final field). out_* depend only on registers.
 *
 * Timing: a bit buffer of 2*WORD_BITS + MAX_Q bits is refilled one word per
 * cycle, so with out_ready held high the loader delivers one field per cycle
 * for any q <= MAX_Q <= WORD_BITS/2. The first field is valid 2 cycles
 * after the start cycle (read, buffer), 3 when it straddles the first word
 * boundary. Exactly the words holding the fields are read. err_count counts
 * across tensors until err_clear or rst.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module weight_loader #
(
    // memory word width (a power of two)
    parameter WORD_BITS = 32,
    // word address width
    parameter ADDR_BITS = 16,
    // widest field, 2 .. WORD_BITS/2 for full throughput
    parameter MAX_Q = 16,
    // width of the field counter
    parameter COUNT_BITS = 24,
    // width of the detected-error counter (saturates at all ones)
    parameter ERR_BITS = 32,
    // derived widths (do not override)
    parameter WORD_SHIFT = $clog2(WORD_BITS),
    parameter BIT_ADDR_BITS = ADDR_BITS + WORD_SHIFT,
    parameter Q_BITS = $clog2(MAX_Q + 1)
)
(
    input  wire                     clk,
    input  wire                     rst,

    // configuration, sampled on start when idle
    input  wire                     start,
    input  wire [BIT_ADDR_BITS-1:0] cfg_bit_offset,
    input  wire [COUNT_BITS-1:0]    cfg_count,
    input  wire [Q_BITS-1:0]        cfg_q,
    input  wire                     cfg_parity,
    output wire                     busy,

    // synchronous memory read port
    output wire                     mem_en,
    output wire [ADDR_BITS-1:0]     mem_addr,
    input  wire [WORD_BITS-1:0]     mem_rdata,

    // field stream
    output wire                     out_valid,
    input  wire                     out_ready,
    output wire [MAX_Q-1:0]         out_data,
    output wire                     out_error,
    output wire                     out_last,

    // detected parity errors
    input  wire                     err_clear,
    output wire [ERR_BITS-1:0]      err_count
);

localparam BUF_BITS = 2*WORD_BITS + MAX_Q;
localparam LVL_BITS = $clog2(BUF_BITS + 1);
localparam CMP_BITS = LVL_BITS + 2;
localparam TOTAL_BITS = COUNT_BITS + Q_BITS + 1;
localparam SKIP_BITS = WORD_SHIFT;

localparam [CMP_BITS-1:0] WORD_CMP = WORD_BITS[CMP_BITS-1:0];
localparam [CMP_BITS-1:0] BUF_CMP = BUF_BITS[CMP_BITS-1:0];
localparam [LVL_BITS-1:0] WORD_LVL = WORD_BITS[LVL_BITS-1:0];
localparam WORD_ROUND_INT = WORD_BITS - 1;
localparam [TOTAL_BITS-1:0] WORD_ROUND = WORD_ROUND_INT[TOTAL_BITS-1:0];

reg                     busy_reg = 1'b0;
reg                     first_reg = 1'b0;
reg [SKIP_BITS-1:0]     skip_reg = {SKIP_BITS{1'b0}};
reg [ADDR_BITS-1:0]     addr_reg = {ADDR_BITS{1'b0}};
reg [TOTAL_BITS-1:0]    words_left_reg = {TOTAL_BITS{1'b0}};
reg                     rd_pending_reg = 1'b0;
reg [BUF_BITS-1:0]      buf_reg = {BUF_BITS{1'b0}};
reg [LVL_BITS-1:0]      level_reg = {LVL_BITS{1'b0}};
reg [COUNT_BITS-1:0]    fields_left_reg = {COUNT_BITS{1'b0}};
reg [Q_BITS-1:0]        q_reg = {Q_BITS{1'b0}};
reg                     parity_reg = 1'b0;
reg [ERR_BITS-1:0]      err_count_reg = {ERR_BITS{1'b0}};

// current field: the low q bits of the buffer
wire [MAX_Q-1:0] field_mask = ~({MAX_Q{1'b1}} << q_reg);
wire [MAX_Q-1:0] field = buf_reg[MAX_Q-1:0] & field_mask;
wire             field_odd = ^field;
wire             field_err = parity_reg && field_odd;
wire [MAX_Q-1:0] field_data = !parity_reg ? field :
                              field_odd ? {MAX_Q{1'b0}} : (field >> 1);

wire [LVL_BITS-1:0] q_lvl = {{(LVL_BITS-Q_BITS){1'b0}}, q_reg};
wire                have_field = busy_reg && (level_reg >= q_lvl);
wire                pop = have_field && out_ready;

// refill: room for one more word on top of the bits held and in flight
wire [CMP_BITS-1:0] level_cmp = {{(CMP_BITS-LVL_BITS){1'b0}}, level_reg};
wire                issue = busy_reg && (words_left_reg != {TOTAL_BITS{1'b0}}) &&
                            (level_cmp + (rd_pending_reg ? WORD_CMP : {CMP_BITS{1'b0}}) + WORD_CMP <= BUF_CMP);

// buffer update: drop the popped field, append the arriving word on top
wire [BUF_BITS-1:0] buf_popped = pop ? (buf_reg >> q_reg) : buf_reg;
wire [LVL_BITS-1:0] level_popped = pop ? (level_reg - q_lvl) : level_reg;
wire [WORD_BITS-1:0] word_in = first_reg ? (mem_rdata >> skip_reg) : mem_rdata;
wire [LVL_BITS-1:0] word_len = first_reg ? (WORD_LVL - {{(LVL_BITS-SKIP_BITS){1'b0}}, skip_reg}) : WORD_LVL;
wire [BUF_BITS-1:0] word_ext = {{(BUF_BITS-WORD_BITS){1'b0}}, word_in};

// words to read for a new tensor: ceil((skip + count*q) / WORD_BITS)
wire [TOTAL_BITS-1:0] start_bits = {{(TOTAL_BITS-SKIP_BITS){1'b0}}, cfg_bit_offset[SKIP_BITS-1:0]} +
                                   ({{(Q_BITS+1){1'b0}}, cfg_count} * {{(COUNT_BITS+1){1'b0}}, cfg_q});
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
        first_reg <= 1'b0;
    end else begin
        buf_reg <= buf_popped;
        level_reg <= level_popped;
    end

    if (pop) begin
        fields_left_reg <= fields_left_reg - 1'b1;
        if (fields_left_reg == {{(COUNT_BITS-1){1'b0}}, 1'b1}) begin
            busy_reg <= 1'b0;
        end
    end

    if (err_clear) begin
        err_count_reg <= {ERR_BITS{1'b0}};
    end else if (pop && field_err && err_count_reg != {ERR_BITS{1'b1}}) begin
        err_count_reg <= err_count_reg + 1'b1;
    end

    if (start && !busy_reg) begin
        busy_reg <= (cfg_count != {COUNT_BITS{1'b0}});
        first_reg <= 1'b1;
        skip_reg <= cfg_bit_offset[SKIP_BITS-1:0];
        addr_reg <= cfg_bit_offset[BIT_ADDR_BITS-1:WORD_SHIFT];
        words_left_reg <= start_words;
        buf_reg <= {BUF_BITS{1'b0}};
        level_reg <= {LVL_BITS{1'b0}};
        fields_left_reg <= cfg_count;
        q_reg <= cfg_q;
        parity_reg <= cfg_parity;
    end

    if (rst) begin
        busy_reg <= 1'b0;
        rd_pending_reg <= 1'b0;
        words_left_reg <= {TOTAL_BITS{1'b0}};
        level_reg <= {LVL_BITS{1'b0}};
        fields_left_reg <= {COUNT_BITS{1'b0}};
        err_count_reg <= {ERR_BITS{1'b0}};
    end
end

assign busy = busy_reg;
assign mem_en = issue;
assign mem_addr = addr_reg;
assign out_valid = have_field;
assign out_data = field_data;
assign out_error = field_err;
assign err_count = err_count_reg;
assign out_last = (fields_left_reg == {{(COUNT_BITS-1){1'b0}}, 1'b1});

endmodule

`resetall
