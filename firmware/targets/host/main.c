/* The virtual board: the portable core over the emulated NVM, served on a pseudo-terminal.
 * Prints the slave path (e.g. /dev/pts/5) as the only line on stdout, then serves the protocol
 * until SIGINT/SIGTERM, or with --exit-on-eof 1 until its standard input reaches end of file (a
 * parent holding the write end of a pipe can die without leaving the board behind).
 * Usage: fliplab-vboard [--size BYTES] [--nvm rram|flash|sram] [--channel SPEC] [--seed N]
 *                       [--exit-on-eof 0|1] */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "fl_board.h"
#include "fl_emu_nvm.h"
#include "spec.h"

#define MAX_SIZE (64u * 1024u * 1024u)
#define WRITE_TIMEOUT_MS 1000

static uint8_t memory[MAX_SIZE];
static struct fl_emu emu;
static struct fl_nvm nvm;
static struct fl_board board;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* Writes a response; gives up (drops it) if nobody drains the terminal for WRITE_TIMEOUT_MS. */
static void pty_write(void *ctx, const uint8_t *data, size_t len)
{
    int fd = *(int *)ctx;
    uint32_t start = now_ms();
    while (len > 0u) {
        ssize_t n = write(fd, data, len);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return;
        }
        if ((uint32_t)(now_ms() - start) > WRITE_TIMEOUT_MS) {
            return;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
        (void)poll(&p, 1, 50);
    }
}

static int usage(const char *msg)
{
    fprintf(stderr,
            "fliplab-vboard: %s\n"
            "usage: fliplab-vboard [--size BYTES] [--nvm rram|flash|sram] [--channel SPEC] "
            "[--seed N] [--exit-on-eof 0|1]\n"
            "  SPEC: none | bsc:P | asym:P01,P10 | stuck:FRACTION,SHARE1[,SEED]\n",
            msg);
    return 2;
}

int main(int argc, char **argv)
{
    unsigned long long size = 4u * 1024u * 1024u;
    enum fl_emu_kind kind = FL_EMU_RRAM;
    const char *channel = "none";
    unsigned long long seed = 0u;
    int exit_on_eof = 0;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc) {
            return usage("missing value after an option");
        }
        const char *val = argv[++i];
        char *end = NULL;
        if (strcmp(opt, "--size") == 0) {
            size = strtoull(val, &end, 0);
            if (*end != '\0' || size == 0u || size > MAX_SIZE) {
                return usage("--size must be 1 .. 67108864 bytes");
            }
        } else if (strcmp(opt, "--nvm") == 0) {
            if (strcmp(val, "rram") == 0) {
                kind = FL_EMU_RRAM;
            } else if (strcmp(val, "flash") == 0) {
                kind = FL_EMU_FLASH;
            } else if (strcmp(val, "sram") == 0) {
                kind = FL_EMU_SRAM;
            } else {
                return usage("--nvm must be rram, flash or sram");
            }
        } else if (strcmp(opt, "--channel") == 0) {
            channel = val;
        } else if (strcmp(opt, "--exit-on-eof") == 0) {
            if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0) {
                return usage("--exit-on-eof must be 0 or 1");
            }
            exit_on_eof = val[0] == '1';
        } else if (strcmp(opt, "--seed") == 0) {
            seed = strtoull(val, &end, 0);
            if (*end != '\0') {
                return usage("--seed must be an integer");
            }
        } else {
            return usage("unknown option");
        }
    }
    if (kind == FL_EMU_FLASH && size % FL_EMU_FLASH_SECTOR != 0u) {
        return usage("--size of a flash memory must be a multiple of 4096");
    }
    struct fl_mode mode;
    if (fl_parse_channel(channel, seed, &mode) != 0) {
        return usage("bad --channel (none | bsc:P | asym:P01,P10 | stuck:F,S[,SEED])");
    }

    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        perror("fliplab-vboard: posix_openpt");
        return 1;
    }
    const char *slave_path = ptsname(master);
    if (slave_path == NULL) {
        perror("fliplab-vboard: ptsname");
        return 1;
    }
    /* keep one slave descriptor open so the master never sees a hang-up between clients,
     * and put the line into raw mode (no echo, no line editing, 8 bits) */
    int slave = open(slave_path, O_RDWR | O_NOCTTY);
    struct termios tio;
    if (slave < 0 || tcgetattr(slave, &tio) != 0) {
        perror("fliplab-vboard: slave");
        return 1;
    }
    cfmakeraw(&tio);
    (void)tcsetattr(slave, TCSANOW, &tio);
    (void)fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);

    fl_emu_init(&emu, memory, (uint32_t)size, kind);
    fl_emu_nvm(&emu, &nvm);
    fl_board_init(&board, &nvm, pty_write, &master);
    (void)fl_board_set_mode(&board, &mode);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    printf("%s\n", slave_path);
    fflush(stdout);

    static uint8_t buf[8192];
    while (!stop) {
        struct pollfd p[2] = {{.fd = master, .events = POLLIN, .revents = 0},
                              {.fd = STDIN_FILENO, .events = POLLIN, .revents = 0}};
        int r = poll(p, exit_on_eof ? 2 : 1, 20);
        if (r > 0 && exit_on_eof && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            char c;
            if (read(STDIN_FILENO, &c, 1) <= 0) {
                break; /* the parent is gone */
            }
        }
        if (r > 0 && (p[0].revents & POLLIN)) {
            ssize_t n = read(master, buf, sizeof buf);
            if (n > 0) {
                fl_board_feed(&board, buf, (size_t)n, now_ms());
            }
        }
        fl_board_poll(&board, now_ms());
    }
    close(slave);
    close(master);
    return 0;
}
