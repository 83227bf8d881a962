/*
 * FlipLab - the board protocol (docs/protocol.md) served from block RAM over
 * a UART: the FPGA counterpart of firmware/core/fl_board.c, and, with
 * ACCEL = 1, the accelerator (rtl/accel_top.v) behind the protocol-v2
 * commands ACCEL_INFO, ACCEL_WRITE, ACCEL_LOAD and ACCEL_RUN.
 *
 *   rxd -> uart_rx -> cobs_decode -> rx buffer (+ CRC-32 residue check)
 *       -> command engine <-> payload memory (MEM_BYTES of block RAM)
 *       -> tx buffer (+ CRC-32) -> cobs_encode -> uart_tx -> txd
 *
 * Commands: INFO, WRITE, READ, ERASE, DIGEST (both sources read the cells:
 * the memory is exact, capability EXACT_CELLS), SET_MODE (NONE only; other
 * models are UNSUPPORTED), STATS, RESET; the same checks, status codes and
 * counters as the firmware, in the same order. Name in INFO: "fpga-bram".
 * The memory is block RAM: it keeps its contents across RESET, not across
 * reconfiguration of the FPGA.
 *
 * Stop and wait: frames that complete while a reply is being built or sent
 * are dropped (the host sends one request at a time). CLK_DIV is f_clk /
 * baud rate; TIMEOUT_CYCLES the 100 ms inter-byte timeout in clock cycles.
 * Each memory byte costs two clock cycles (registered block-RAM reads).
 *
 * Accelerator (ACCEL = 1; INFO then says protocol version 2 and capability
 * 0x0010): ACCEL_WRITE fills its program registers or neuron parameters,
 * ACCEL_LOAD copies a range of the board memory (the image payload the host
 * wrote) into its payload RAM, ACCEL_RUN writes the input vector, runs the
 * program and replies with the cycle and parity-error counters and the
 * output vector. With ACCEL = 0 these commands are UNKNOWN_COMMAND, as on
 * the firmware. LANES .. L_BITS are accel_top's build parameters
 * (ACC_ADDR_BITS is its ADDR_BITS: payload RAM depth in WORD_BITS words).
 * A run longer than RUN_TIMEOUT cycles resets the accelerator and is answered
 * BAD_ARGUMENT, so a malformed program cannot hang the board.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module board_server #
(
    parameter CLK_DIV = 217,
    parameter MEM_ADDR_BITS = 16,
    parameter TIMEOUT_CYCLES = 2500000,
    parameter ACCEL = 0,
    parameter LANES = 8,
    parameter WORD_BITS = 128,
    parameter ACC_ADDR_BITS = 10,
    parameter N_BITS = 7,
    parameter P_BITS = 8,
    parameter L_BITS = 3,
    // ACCEL_RUN stops a program that has not finished after this many cycles (a malformed
    // program, e.g. a layer with n_in = 0, would never end): 16 x the slowest valid program
    parameter RUN_TIMEOUT = 16 * (1 << L_BITS) * ((1 << (2 * N_BITS)) + 64)
)
(
    input  wire clk,
    input  wire rst,

    input  wire rxd,
    output wire txd
);

localparam [32:0] MEM_BYTES = 33'd1 << MEM_ADDR_BITS;
localparam BUF_BITS = 13;                   // rx/tx buffers: 8 KiB >= the 4112-byte raw frame
localparam [15:0] MAX_CHUNK = 16'd4096;

localparam [7:0] CMD_INFO = 8'h01, CMD_WRITE = 8'h02, CMD_READ = 8'h03, CMD_ERASE = 8'h04,
                 CMD_DIGEST = 8'h05, CMD_SET_MODE = 8'h06, CMD_STATS = 8'h07, CMD_RESET = 8'h08;
localparam [7:0] CMD_ACCEL_INFO = 8'h10, CMD_ACCEL_WRITE = 8'h11, CMD_ACCEL_LOAD = 8'h12,
                 CMD_ACCEL_RUN = 8'h13;
localparam [7:0] ST_OK = 8'h00, ST_UNKNOWN_COMMAND = 8'h01, ST_BAD_LENGTH = 8'h02,
                 ST_OUT_OF_RANGE = 8'h03, ST_BAD_VERSION = 8'h04, ST_UNSUPPORTED = 8'h05,
                 ST_BAD_ARGUMENT = 8'h06;

localparam [3:0] S_IDLE = 4'd0, S_DECIDE = 4'd1, S_COPY = 4'd2, S_FILL = 4'd3, S_DIGEST = 4'd4,
                 S_HDR = 4'd5, S_BODY = 4'd6, S_CRC = 4'd7, S_SEND = 4'd8, S_WAIT = 4'd9,
                 S_WAIT_SEND = 4'd10, S_AWRITE = 4'd11, S_ALOAD = 4'd12, S_AINPUT = 4'd13,
                 S_ARUN = 4'd14;

// accelerator geometry (docs/protocol.md, ACCEL_INFO)
localparam WBYTES_SHIFT = $clog2(WORD_BITS / 8);
localparam [32:0] ACC_PAYLOAD_BYTES = (33'd1 << ACC_ADDR_BITS) << WBYTES_SHIFT;
localparam [16:0] ACT_ENTRIES = 17'd1 << N_BITS;
localparam [16:0] PROG_WORDS = 17'd8 << L_BITS;
localparam [16:0] PAR_WORDS = 17'd4 << P_BITS;
localparam [16:0] PAR_RECORDS = 17'd1 << P_BITS;
localparam [8:0]  ACC_LAYERS = 9'd1 << L_BITS;
localparam ACT_BITS = 16;
localparam [7:0]  LANES_U8 = LANES;
localparam [15:0] WORD_BITS_U16 = WORD_BITS;

// --------------------------------------------------------------- receive path ----
wire       rx_valid;
wire [7:0] rx_byte;
wire       rx_framing_error;

uart_rx #(.CLK_DIV(CLK_DIV)) u_rx (
    .clk(clk), .rst(rst), .rxd(rxd),
    .m_valid(rx_valid), .m_data(rx_byte), .frame_error(rx_framing_error)
);

wire       dec_valid;
wire [7:0] dec_byte;
wire       dec_done, dec_cobs_error, dec_oversize, dec_timeout;

cobs_decode #(.MAX_ENCODED(4129), .TIMEOUT_CYCLES(TIMEOUT_CYCLES)) u_dec (
    .clk(clk), .rst(rst), .s_valid(rx_valid), .s_data(rx_byte),
    .m_valid(dec_valid), .m_data(dec_byte),
    .frame_done(dec_done), .cobs_error(dec_cobs_error), .oversize(dec_oversize),
    .timeout(dec_timeout)
);

reg [3:0]          state_reg = S_IDLE;
wire               idle = state_reg == S_IDLE;
reg                rx_fresh_reg = 1'b1;      // the next decoded byte starts a frame
reg [BUF_BITS-1:0] rx_len_reg = {BUF_BITS{1'b0}};
reg [7:0]          arg_reg [0:31];           // header and the first 24 payload bytes

wire               rx_crc_ok;
wire [31:0]        rx_crc_unused;

crc32 u_rx_crc (
    .clk(clk), .rst(rst), .clear(rx_fresh_reg), .s_valid(dec_valid), .s_data(dec_byte),
    .crc(rx_crc_unused), .residue_ok(rx_crc_ok)
);

reg [BUF_BITS-1:0] rxb_rd_addr;
wire [7:0]         rxb_rd_data;

sync_ram #(.WORD_BITS(8), .ADDR_BITS(BUF_BITS)) u_rx_buf (
    .clk(clk),
    .wr_en(dec_valid && idle && rx_len_reg != {BUF_BITS{1'b1}}), .wr_addr(rx_len_reg),
    .wr_data(dec_byte),
    .rd_en(1'b1), .rd_addr(rxb_rd_addr), .rd_data(rxb_rd_data)
);

// request fields (little-endian)
wire [7:0]  q_version = arg_reg[0];
wire [7:0]  q_command = arg_reg[1];
wire [15:0] q_seq = {arg_reg[5], arg_reg[4]};
wire [15:0] q_length = {arg_reg[7], arg_reg[6]};
wire [31:0] q_u32_0 = {arg_reg[11], arg_reg[10], arg_reg[9], arg_reg[8]};
wire [31:0] q_u32_4 = {arg_reg[15], arg_reg[14], arg_reg[13], arg_reg[12]};
wire [15:0] q_u16_4 = {arg_reg[13], arg_reg[12]};
wire [15:0] q_u16_2 = {arg_reg[11], arg_reg[10]};
wire [7:0]  q_u8_8 = arg_reg[16];
wire [BUF_BITS-1:0] body_len = rx_len_reg - 12;

// offset + len <= memory size, without overflow
function in_range(input [31:0] offset, input [31:0] len);
    in_range = ({1'b0, offset} + {1'b0, len}) <= MEM_BYTES;
endfunction

// ------------------------------------------------------------ payload memory ----
reg [MEM_ADDR_BITS-1:0] mem_addr;
reg                     mem_we;
reg [7:0]               mem_wdata;
wire [7:0]              mem_rd_data;

sync_ram #(.WORD_BITS(8), .ADDR_BITS(MEM_ADDR_BITS)) u_mem (
    .clk(clk), .wr_en(mem_we), .wr_addr(mem_addr), .wr_data(mem_wdata),
    .rd_en(1'b1), .rd_addr(mem_addr), .rd_data(mem_rd_data)
);

// ------------------------------------------------------------ counters, state ----
reg [31:0] cnt_rx_frames = 0, cnt_crc = 0, cnt_cobs = 0, cnt_oversize = 0, cnt_timeouts = 0,
           cnt_bad = 0, cnt_tx = 0, cnt_written = 0, cnt_read = 0;
reg [31:0] extent_reg = 32'd0;

reg [7:0]  status_reg = ST_OK;
reg [15:0] reply_len_reg = 16'd0;
reg [31:0] offset_reg = 32'd0;
reg [31:0] count_reg = 32'd0;     // bytes of the memory operation
reg [31:0] index_reg = 32'd0;
reg        phase_reg = 1'b0;      // 0: address out, 1: registered read data in
reg        reset_after_reg = 1'b0;
reg [31:0] digest_reg = 32'd0;
reg [31:0] word_reg = 32'd0;      // the last request bytes copied (little-endian assembly)
reg [7:0]  acc_layers_reg = 8'd0; // ACCEL_RUN: layers to run
reg        acc_abort_reg = 1'b0;  // resets the accelerator after a run timed out

// ------------------------------------------------------------------ transmit ----
reg                 txb_we;
reg [7:0]           txb_wdata;
reg [BUF_BITS-1:0]  txb_len_reg = {BUF_BITS{1'b0}};
wire [BUF_BITS-1:0] enc_rd_addr;
wire [7:0]          enc_rd_data;
wire [31:0]         tx_crc;
wire                tx_crc_unused;

crc32 u_tx_crc (
    .clk(clk), .rst(rst), .clear(state_reg == S_DECIDE), .s_valid(txb_we && state_reg != S_CRC), .s_data(txb_wdata),
    .crc(tx_crc), .residue_ok(tx_crc_unused)
);

// the digest of a memory range: both DIGEST sources read the (exact) cells
wire [31:0] mem_crc;
wire        mem_crc_unused;

crc32 u_mem_crc (
    .clk(clk), .rst(rst), .clear(state_reg == S_DECIDE),
    .s_valid(state_reg == S_DIGEST && phase_reg), .s_data(mem_rd_data),
    .crc(mem_crc), .residue_ok(mem_crc_unused)
);

sync_ram #(.WORD_BITS(8), .ADDR_BITS(BUF_BITS)) u_tx_buf (
    .clk(clk), .wr_en(txb_we), .wr_addr(txb_len_reg), .wr_data(txb_wdata),
    .rd_en(1'b1), .rd_addr(enc_rd_addr), .rd_data(enc_rd_data)
);

wire       enc_busy;
wire       enc_valid;
wire [7:0] enc_byte;
wire       utx_ready;
wire       utx_busy;

cobs_encode #(.ADDR_BITS(BUF_BITS)) u_enc (
    .clk(clk), .rst(rst), .start(state_reg == S_SEND), .length(txb_len_reg), .busy(enc_busy),
    .rd_addr(enc_rd_addr), .rd_data(enc_rd_data),
    .m_valid(enc_valid), .m_data(enc_byte), .m_ready(utx_ready)
);

uart_tx #(.CLK_DIV(CLK_DIV)) u_tx (
    .clk(clk), .rst(rst), .s_valid(enc_valid), .s_ready(utx_ready), .s_data(enc_byte),
    .txd(txd), .busy(utx_busy)
);

// ------------------------------------------------------------ accelerator ----
// write ports and controls, driven by the command engine (always @* below)
reg                       acc_ram_we;
reg [ACC_ADDR_BITS-1:0]   acc_ram_addr;
reg [WORD_BITS-1:0]       acc_ram_wdata;
reg [WORD_BITS-1:0]       acc_word_reg = {WORD_BITS{1'b0}};  // payload RAM word being assembled
reg                       acc_prog_we;
reg                       acc_par_we;
reg                       acc_act_we;
reg                       acc_start;
wire [15:0]               acc_index16 = offset_reg[15:0] + index_reg[17:2];  // ACCEL_WRITE word
wire [31:0]               acc_res_index = (index_reg - 32'd8) >> 1;          // ACCEL_RUN body byte 8 + 2j
wire [31:0]               acc_word32 = {rxb_rd_data, word_reg[31:8]};        // with this cycle's byte
wire [ACT_BITS-1:0]       acc_res_data;
wire [31:0]               acc_cycles;
wire [31:0]               acc_errors;
wire                      acc_busy;
wire                      acc_done;

generate
    if (ACCEL != 0) begin : g_accel
        accel_top #(
            .LANES(LANES), .WORD_BITS(WORD_BITS), .ADDR_BITS(ACC_ADDR_BITS), .N_BITS(N_BITS),
            .ACT_BITS(ACT_BITS), .P_BITS(P_BITS), .L_BITS(L_BITS)
        ) u_accel (
            .clk(clk), .rst(rst || acc_abort_reg),
            .ram_wr_en(acc_ram_we), .ram_wr_addr(acc_ram_addr), .ram_wr_data(acc_ram_wdata),
            .prog_wr_en(acc_prog_we), .prog_wr_addr(acc_index16[L_BITS+2:0]), .prog_wr_data(acc_word32),
            .n_layers(acc_layers_reg[L_BITS:0]),
            .par_wr_en(acc_par_we), .par_wr_addr(acc_index16[P_BITS+1:0]), .par_wr_data(acc_word32),
            .act_wr_en(acc_act_we), .act_wr_addr(index_reg[N_BITS:1]), .act_wr_data(acc_word32[31:16]),
            .start(acc_start), .busy(acc_busy), .done(acc_done),
            .res_rd_addr(acc_res_index[N_BITS-1:0]), .res_rd_data(acc_res_data),
            .cycle_count(acc_cycles), .err_count(acc_errors)
        );
    end else begin : g_no_accel
        assign acc_res_data = {ACT_BITS{1'b0}};
        assign acc_cycles = 32'd0;
        assign acc_errors = 32'd0;
        assign acc_busy = 1'b0;
        assign acc_done = 1'b0;
    end
endgenerate

// ACCEL_INFO reply (16 bytes): u8 lanes, u8 max q, u16 word bits, u32 payload RAM bytes,
// u16 activation entries, u16 neuron parameter records, u8 layers, u8 activation bits, u16 0
wire [127:0] accel_info_word = {16'd0, 8'd16, ACC_LAYERS[7:0], PAR_RECORDS[15:0], ACT_ENTRIES[15:0],
                                ACC_PAYLOAD_BYTES[31:0], WORD_BITS_U16, 8'd16, LANES_U8};

// INFO reply byte i (32 bytes)
wire [31:0] mem_size32 = MEM_BYTES[31:0];
wire [8*12-1:0] name = {"fpga-bram", 24'd0};
function [7:0] info_byte(input [5:0] i);
    case (i)
        6'd0: info_byte = (ACCEL != 0) ? 8'd2 : 8'd1;   // protocol version
        6'd1: info_byte = 8'd8;                  // word width
        6'd2: info_byte = (ACCEL != 0) ? 8'h14 : 8'h04; // capabilities: exact cells (+ accelerator)
        6'd3: info_byte = 8'h00;
        6'd4: info_byte = mem_size32[7:0];
        6'd5: info_byte = mem_size32[15:8];
        6'd6: info_byte = mem_size32[23:16];
        6'd7: info_byte = mem_size32[31:24];
        6'd8: info_byte = extent_reg[7:0];
        6'd9: info_byte = extent_reg[15:8];
        6'd10: info_byte = extent_reg[23:16];
        6'd11: info_byte = extent_reg[31:24];
        6'd16: info_byte = MAX_CHUNK[7:0];
        6'd17: info_byte = MAX_CHUNK[15:8];
        6'd18: info_byte = 8'h00;                // model NONE
        6'd19: info_byte = 8'hFF;                // erased value
        default: info_byte = (i >= 6'd20) ? name[8*(31 - i) +: 8] : 8'h00; // 12-15: erase block 0
    endcase
endfunction

// STATS reply byte i (10 x u32)
wire [32*10-1:0] stats_word = {32'd0, cnt_read, cnt_written, cnt_tx, cnt_bad, cnt_timeouts,
                               cnt_oversize, cnt_cobs, cnt_crc, cnt_rx_frames};
function [7:0] stats_byte(input [5:0] i);
    stats_byte = stats_word[8*i +: 8];
endfunction

wire [63:0] digest_word = {count_reg, digest_reg};
wire [63:0] run_word = {acc_errors, acc_cycles};
wire [63:0] header_word = {reply_len_reg, q_seq, 8'h00, status_reg, q_command | 8'h80, 8'h01};
wire [31:0] mem_index = offset_reg + index_reg;

// memory and buffer addressing of the current state (combinational)
always @* begin
    mem_addr = mem_index[MEM_ADDR_BITS-1:0];
    mem_we = 1'b0;
    mem_wdata = 8'hFF;
    rxb_rd_addr = index_reg[BUF_BITS-1:0] + 12;  // payload byte 4 + index: after its 4-byte head
    txb_we = 1'b0;
    txb_wdata = 8'h00;
    acc_ram_we = 1'b0;
    acc_ram_addr = index_reg[ACC_ADDR_BITS+WBYTES_SHIFT-1:WBYTES_SHIFT];
    acc_ram_wdata = (index_reg[WBYTES_SHIFT-1:0] == 0) ? {WORD_BITS{1'b0}} : acc_word_reg;
    acc_ram_wdata[8*index_reg[WBYTES_SHIFT-1:0] +: 8] = mem_rd_data;
    acc_prog_we = 1'b0;
    acc_par_we = 1'b0;
    acc_act_we = 1'b0;
    acc_start = 1'b0;
    case (state_reg)
        S_COPY: begin
            mem_we = phase_reg;
            mem_wdata = rxb_rd_data;
        end
        S_FILL: mem_we = count_reg != 32'd0;
        S_AWRITE: begin
            // the fourth byte of a value: write it (space 0 program, 1 neuron parameters)
            acc_prog_we = phase_reg && index_reg[1:0] == 2'd3 && arg_reg[8] == 8'd0;
            acc_par_we = phase_reg && index_reg[1:0] == 2'd3 && arg_reg[8] == 8'd1;
        end
        S_ALOAD: begin
            // the last byte of a payload RAM word, or of the range: write the word
            acc_ram_we = phase_reg && (&index_reg[WBYTES_SHIFT-1:0] || index_reg + 1 == count_reg);
        end
        S_AINPUT: acc_act_we = phase_reg && index_reg[0];
        S_ARUN: acc_start = !phase_reg;
        S_HDR: begin
            txb_we = 1'b1;
            txb_wdata = header_word[8*index_reg[2:0] +: 8];
        end
        S_BODY: begin
            case (q_command)
                CMD_INFO: begin txb_we = 1'b1; txb_wdata = info_byte(index_reg[5:0]); end
                CMD_STATS: begin txb_we = 1'b1; txb_wdata = stats_byte(index_reg[5:0]); end
                CMD_DIGEST: begin txb_we = 1'b1; txb_wdata = digest_word[8*index_reg[2:0] +: 8]; end
                CMD_ACCEL_INFO: begin txb_we = 1'b1; txb_wdata = accel_info_word[8*index_reg[3:0] +: 8]; end
                CMD_ACCEL_RUN: begin
                    txb_we = 1'b1;
                    if (index_reg < 8) txb_wdata = run_word[8*index_reg[2:0] +: 8];
                    else txb_wdata = acc_res_data[8*index_reg[0] +: 8];
                end
                default: begin txb_we = phase_reg; txb_wdata = mem_rd_data; end // READ
            endcase
        end
        S_CRC: begin
            txb_we = 1'b1;
            txb_wdata = tx_crc[8*index_reg[1:0] +: 8];
        end
        default: ;
    endcase
end

// a UART framing error needs no action: the frame's CRC or COBS check drops it
wire unused_bits = ^{rx_framing_error, utx_busy, mem_index[31:MEM_ADDR_BITS], rx_crc_unused,
                     tx_crc_unused, mem_crc_unused, acc_busy, acc_res_index, word_reg[7:0],
                     // the accelerator's controls (all of them unused when ACCEL = 0)
                     acc_layers_reg, acc_abort_reg, acc_index16, acc_ram_we, acc_ram_addr, acc_ram_wdata,
                     acc_prog_we, acc_par_we, acc_act_we, acc_start, acc_word32};

integer k;

always @(posedge clk) begin
    // ------------------------------------------------------------------ receive ----
    if (dec_valid && idle) begin
        rx_fresh_reg <= 1'b0;
        if (rx_len_reg != {BUF_BITS{1'b1}}) begin
            rx_len_reg <= rx_len_reg + 1'b1;
        end
        if (rx_len_reg < 32) begin
            arg_reg[rx_len_reg[4:0]] <= dec_byte;
        end
    end
    if (dec_timeout) begin
        cnt_timeouts <= cnt_timeouts + 1;
        if (idle) begin
            rx_fresh_reg <= 1'b1;
            rx_len_reg <= {BUF_BITS{1'b0}};
        end
    end

    if (txb_we) begin
        txb_len_reg <= txb_len_reg + 1'b1;
    end

    acc_abort_reg <= 1'b0;

    case (state_reg)
        S_IDLE: begin
            if (dec_done) begin
                if (dec_cobs_error) begin
                    cnt_cobs <= cnt_cobs + 1;
                end else if (dec_oversize) begin
                    cnt_oversize <= cnt_oversize + 1;
                end else if (rx_len_reg < 12 || !rx_crc_ok) begin
                    cnt_crc <= cnt_crc + 1;
                end else begin
                    cnt_rx_frames <= cnt_rx_frames + 1;
                    if (q_command[7]) begin
                        cnt_bad <= cnt_bad + 1;  // a response looped back: never answered
                    end else begin
                        state_reg <= S_DECIDE;
                    end
                end
                if (dec_cobs_error || dec_oversize || rx_len_reg < 12 || !rx_crc_ok || q_command[7]) begin
                    rx_fresh_reg <= 1'b1;
                    rx_len_reg <= {BUF_BITS{1'b0}};
                end
            end
        end
        S_DECIDE: begin
            status_reg <= ST_OK;
            reply_len_reg <= 16'd0;
            offset_reg <= q_u32_0;
            index_reg <= 32'd0;
            phase_reg <= 1'b0;
            txb_len_reg <= {BUF_BITS{1'b0}};
            reset_after_reg <= 1'b0;
            state_reg <= S_HDR;
            if (q_version != 8'd1) begin
                status_reg <= ST_BAD_VERSION;
            end else if ({{(16-BUF_BITS){1'b0}}, body_len} != q_length) begin
                status_reg <= ST_BAD_LENGTH;
            end else begin
                case (q_command)
                    CMD_INFO: begin
                        if (q_length != 0) status_reg <= ST_BAD_LENGTH;
                        else reply_len_reg <= 16'd32;
                    end
                    CMD_WRITE: begin
                        count_reg <= {16'd0, q_length} - 32'd4;
                        if (q_length < 5 || q_length > MAX_CHUNK + 4) status_reg <= ST_BAD_LENGTH;
                        else if (!in_range(q_u32_0, {16'd0, q_length} - 32'd4)) status_reg <= ST_OUT_OF_RANGE;
                        else state_reg <= S_COPY;
                    end
                    CMD_READ: begin
                        count_reg <= {16'd0, q_u16_4};
                        if (q_length != 8) status_reg <= ST_BAD_LENGTH;
                        else if (q_u16_4 == 0 || q_u16_4 > MAX_CHUNK) status_reg <= ST_BAD_ARGUMENT;
                        else if (!in_range(q_u32_0, {16'd0, q_u16_4})) status_reg <= ST_OUT_OF_RANGE;
                        else reply_len_reg <= q_u16_4;
                    end
                    CMD_ERASE: begin
                        count_reg <= q_u32_4;
                        if (q_length != 8) status_reg <= ST_BAD_LENGTH;
                        else if (!in_range(q_u32_0, q_u32_4)) status_reg <= ST_OUT_OF_RANGE;
                        else state_reg <= S_FILL;
                    end
                    CMD_DIGEST: begin
                        count_reg <= q_u32_4;
                        if (q_length != 12) status_reg <= ST_BAD_LENGTH;
                        else if (q_u8_8 > 8'd1) status_reg <= ST_BAD_ARGUMENT;
                        else if (!in_range(q_u32_0, q_u32_4)) status_reg <= ST_OUT_OF_RANGE;
                        else state_reg <= S_DIGEST;
                    end
                    CMD_SET_MODE: begin
                        if (q_length != 20) status_reg <= ST_BAD_LENGTH;
                        else if (arg_reg[8] != 8'd0) status_reg <= ST_UNSUPPORTED;
                    end
                    CMD_STATS: begin
                        if (q_length != 0) status_reg <= ST_BAD_LENGTH;
                        else reply_len_reg <= 16'd40;
                    end
                    CMD_RESET: begin
                        if (q_length != 0) status_reg <= ST_BAD_LENGTH;
                        else reset_after_reg <= 1'b1;
                    end
                    CMD_ACCEL_INFO: begin
                        if (ACCEL == 0) status_reg <= ST_UNKNOWN_COMMAND;
                        else if (q_length != 0) status_reg <= ST_BAD_LENGTH;
                        else reply_len_reg <= 16'd16;
                    end
                    CMD_ACCEL_WRITE: begin
                        // u8 space, u8 reserved, u16 first index, 1..1024 u32 values
                        offset_reg <= {16'd0, q_u16_2};
                        count_reg <= {16'd0, q_length} - 32'd4;
                        if (ACCEL == 0) status_reg <= ST_UNKNOWN_COMMAND;
                        else if (q_length < 8 || q_length[1:0] != 2'd0 || q_length > MAX_CHUNK + 4)
                            status_reg <= ST_BAD_LENGTH;
                        else if (arg_reg[8] > 8'd1) status_reg <= ST_BAD_ARGUMENT;
                        else if ({1'b0, q_u16_2} + {3'd0, q_length[15:2]} - 17'd1 >
                                 (arg_reg[8] == 8'd0 ? PROG_WORDS : PAR_WORDS))
                            status_reg <= ST_OUT_OF_RANGE;
                        else state_reg <= S_AWRITE;
                    end
                    CMD_ACCEL_LOAD: begin
                        // u32 offset, u32 length: board memory -> payload RAM from its byte 0
                        count_reg <= q_u32_4;
                        if (ACCEL == 0) status_reg <= ST_UNKNOWN_COMMAND;
                        else if (q_length != 8) status_reg <= ST_BAD_LENGTH;
                        else if (!in_range(q_u32_0, q_u32_4) || {1'b0, q_u32_4} > ACC_PAYLOAD_BYTES)
                            status_reg <= ST_OUT_OF_RANGE;
                        else if (q_u32_4 != 32'd0) state_reg <= S_ALOAD;
                    end
                    CMD_ACCEL_RUN: begin
                        // u8 layers, u8 reserved, u16 outputs, n_in x i16 inputs
                        acc_layers_reg <= arg_reg[8];
                        count_reg <= {16'd0, q_length} - 32'd4;
                        if (ACCEL == 0) status_reg <= ST_UNKNOWN_COMMAND;
                        else if (q_length < 4 || q_length[0] || {2'd0, q_length[15:1]} > ACT_ENTRIES + 17'd2)
                            status_reg <= ST_BAD_LENGTH;
                        else if (arg_reg[8] == 8'd0 || {1'b0, arg_reg[8]} > ACC_LAYERS ||
                                 q_u16_2 == 16'd0 || {1'b0, q_u16_2} > ACT_ENTRIES)
                            status_reg <= ST_BAD_ARGUMENT;
                        else begin
                            reply_len_reg <= 16'd8 + {q_u16_2[14:0], 1'b0};
                            state_reg <= (q_length == 16'd4) ? S_ARUN : S_AINPUT;
                        end
                    end
                    default: status_reg <= ST_UNKNOWN_COMMAND;
                endcase
            end
        end
        S_COPY: begin
            // phase 0: the rx buffer reads byte 12 + index; phase 1: it is written to memory
            phase_reg <= !phase_reg;
            if (phase_reg) begin
                index_reg <= index_reg + 1;
                if (index_reg + 1 == count_reg) begin
                    cnt_written <= cnt_written + count_reg;
                    if (offset_reg + count_reg > extent_reg) extent_reg <= offset_reg + count_reg;
                    index_reg <= 32'd0;
                    phase_reg <= 1'b0;
                    state_reg <= S_HDR;
                end
            end
        end
        S_FILL: begin
            if (count_reg == 0 || index_reg + 1 >= count_reg) begin
                if (q_u32_0 == 0 && {1'b0, count_reg} == MEM_BYTES) extent_reg <= 32'd0;
                index_reg <= 32'd0;
                state_reg <= S_HDR;
            end else begin
                index_reg <= index_reg + 1;
            end
        end
        S_DIGEST: begin
            if (count_reg == 0) begin
                reply_len_reg <= 16'd8;
                state_reg <= S_WAIT;
            end else begin
                phase_reg <= !phase_reg;
                if (phase_reg) begin
                    index_reg <= index_reg + 1;
                    if (index_reg + 1 == count_reg) begin
                        reply_len_reg <= 16'd8;
                        phase_reg <= 1'b0;
                        state_reg <= S_WAIT;
                    end
                end
            end
        end
        S_AWRITE, S_AINPUT: begin
            // phase 0: the rx buffer reads the byte; phase 1: it joins word_reg (the accelerator
            // takes each completed value through acc_word32 in this cycle, see always @*)
            phase_reg <= !phase_reg;
            if (phase_reg) begin
                word_reg <= acc_word32;
                index_reg <= index_reg + 1;
                if (index_reg + 1 == count_reg) begin
                    index_reg <= 32'd0;
                    phase_reg <= 1'b0;
                    state_reg <= (state_reg == S_AINPUT) ? S_ARUN : S_HDR;
                end
            end
        end
        S_ALOAD: begin
            // phase 0: the memory reads offset + index; phase 1: the byte joins the RAM word
            phase_reg <= !phase_reg;
            if (phase_reg) begin
                acc_word_reg <= acc_ram_wdata;
                index_reg <= index_reg + 1;
                if (index_reg + 1 == count_reg) begin
                    index_reg <= 32'd0;
                    phase_reg <= 1'b0;
                    state_reg <= S_HDR;
                end
            end
        end
        S_ARUN: begin
            // phase 0: start (always @*); phase 1: wait for the last layer, counting in
            // count_reg; past RUN_TIMEOUT the accelerator is reset and the run refused
            phase_reg <= 1'b1;
            count_reg <= phase_reg ? count_reg + 1 : 32'd0;
            if (phase_reg && (acc_done || count_reg == RUN_TIMEOUT)) begin
                if (!acc_done) begin
                    status_reg <= ST_BAD_ARGUMENT;
                    reply_len_reg <= 16'd0;
                    acc_abort_reg <= 1'b1;
                end
                index_reg <= 32'd0;
                phase_reg <= 1'b0;
                state_reg <= S_HDR;
            end
        end
        S_WAIT: begin
            // the digest CRC settles one cycle after its last byte
            digest_reg <= count_reg == 0 ? 32'd0 : mem_crc;
            index_reg <= 32'd0;
            state_reg <= S_HDR;
        end
        S_HDR: begin
            if (index_reg == 0 && status_reg != ST_OK) begin
                cnt_bad <= cnt_bad + 1;
            end
            index_reg <= index_reg + 1;
            if (index_reg == 7) begin
                index_reg <= 32'd0;
                phase_reg <= 1'b0;
                state_reg <= reply_len_reg == 0 ? S_CRC : S_BODY;
                if (q_command == CMD_READ && reply_len_reg != 0) begin
                    cnt_read <= cnt_read + count_reg;
                end
            end
        end
        S_BODY: begin
            if (q_command == CMD_READ) begin
                // phase 0: memory reads offset + index; phase 1: the byte goes to the tx buffer
                phase_reg <= !phase_reg;
                if (phase_reg) begin
                    index_reg <= index_reg + 1;
                    if (index_reg + 1 == {16'd0, reply_len_reg}) begin
                        index_reg <= 32'd0;
                        phase_reg <= 1'b0;
                        state_reg <= S_CRC;
                    end
                end
            end else begin
                index_reg <= index_reg + 1;
                if (index_reg + 1 == {16'd0, reply_len_reg}) begin
                    index_reg <= 32'd0;
                    state_reg <= S_CRC;
                end
            end
        end
        S_CRC: begin
            index_reg <= index_reg + 1;
            if (index_reg == 3) begin
                state_reg <= S_SEND;
            end
        end
        S_SEND: begin
            state_reg <= S_WAIT_SEND;
        end
        default: begin // S_WAIT_SEND
            if (!enc_busy) begin
                cnt_tx <= cnt_tx + 1;
                if (reset_after_reg) begin
                    cnt_rx_frames <= 0; cnt_crc <= 0; cnt_cobs <= 0; cnt_oversize <= 0;
                    cnt_timeouts <= 0; cnt_bad <= 0; cnt_tx <= 0; cnt_written <= 0; cnt_read <= 0;
                end
                rx_fresh_reg <= 1'b1;
                rx_len_reg <= {BUF_BITS{1'b0}};
                state_reg <= S_IDLE;
            end
        end
    endcase

    if (rst) begin
        state_reg <= S_IDLE;
        rx_fresh_reg <= 1'b1;
        rx_len_reg <= {BUF_BITS{1'b0}};
        extent_reg <= 32'd0;
        cnt_rx_frames <= 0; cnt_crc <= 0; cnt_cobs <= 0; cnt_oversize <= 0;
        cnt_timeouts <= 0; cnt_bad <= 0; cnt_tx <= 0; cnt_written <= 0; cnt_read <= 0;
        for (k = 0; k < 32; k = k + 1) begin
            arg_reg[k] <= 8'd0;
        end
    end
end

endmodule

`resetall
