/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The interactive console on DPDK's cmdline library, and the command file.
 *
 * cmdline matches a line against instructions made of tokens. Ours is one
 * instruction with dynamic tokens: token i is "the i-th word", generated
 * on demand, and the instruction ends after the word that ends the line.
 * Each word token's parse() records its word, so when cmdline asks token i
 * for completions (Tab) or help ('?') the words before it are known and
 * the Console's command table answers. The line is then executed by the
 * Console like any other front end's; cmdline contributes editing,
 * history (rdline) and the terminal handling.
 */
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

#include <cmdline.h>
#include <cmdline_parse.h>
#include <cmdline_rdline.h>
#include <cmdline_socket.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "flowhome/cli_server.hpp"

namespace flowhome {
namespace {

constexpr unsigned kMaxWords = 24;

struct WordToken {
    cmdline_parse_token_hdr_t hdr;
    unsigned index;
};

/* cmdline's callbacks carry no user pointer beyond the token: one console
 * at a time per process (the main lcore's). */
struct State {
    Console *console = nullptr;
    std::vector<std::string> words;   /* words parsed so far on this pass */
    bool at_end = false;              /* the last parsed word ended the line */
    std::vector<std::string> choices; /* completions for the current token */
    WordToken tokens[kMaxWords];
} g;

int word_parse(cmdline_parse_token_hdr_t *tk, const char *buf, void *, unsigned)
{
    const unsigned index = reinterpret_cast<WordToken *>(tk)->index;
    size_t len = 0;
    while (!cmdline_isendoftoken(buf[len]))
        ++len;
    if (len == 0)
        return -1;
    g.words.resize(index);
    g.words.emplace_back(buf, len);
    /* A line to execute ends in '\n'; a line being completed ends in '\0'
     * with the cursor after it, and more words may follow. */
    const char *p = buf + len;
    while (*p == ' ' || *p == '\t')
        ++p;
    g.at_end = *p == '\n' || *p == '\r' || *p == '#';
    return static_cast<int>(len);
}

std::vector<std::string> words_before(unsigned index)
{
    return std::vector<std::string>(g.words.begin(),
                                    g.words.begin() + std::min<size_t>(index, g.words.size()));
}

int word_complete_nb(cmdline_parse_token_hdr_t *tk)
{
    const unsigned index = reinterpret_cast<WordToken *>(tk)->index;
    g.choices = g.console->complete(words_before(index));
    return static_cast<int>(g.choices.size());
}

int word_complete_elt(cmdline_parse_token_hdr_t *, int i, char *dst, unsigned size)
{
    if (i < 0 || static_cast<size_t>(i) >= g.choices.size() || size == 0)
        return -1;
    std::snprintf(dst, size, "%s", g.choices[static_cast<size_t>(i)].c_str());
    return 0;
}

int word_help(cmdline_parse_token_hdr_t *tk, char *dst, unsigned size)
{
    const unsigned index = reinterpret_cast<WordToken *>(tk)->index;
    const std::string h = g.console->hint(words_before(index));
    std::snprintf(dst, size, "%s", h.empty() ? "word" : h.c_str());
    return 0;
}

cmdline_token_ops g_word_ops = {word_parse, word_complete_nb, word_complete_elt, word_help};

/* Both the token generator (cl == nullptr: *parsed = token at index, or
 * null past the line's last word) and the command callback. */
void on_line(void *parsed, cmdline *cl, void *data);

/* The instruction, with its (unused, all null) static token array: the
 * first null entry selects dynamic tokens, and get_token() passes the
 * address of entry i to the generator. */
alignas(cmdline_parse_inst_t) unsigned char g_inst_storage[sizeof(cmdline_parse_inst_t) +
                                                           (kMaxWords + 1) * sizeof(void *)];
cmdline_parse_inst_t *g_inst = nullptr;
cmdline_parse_ctx_t g_ctx[2] = {nullptr, nullptr};

void on_line(void *parsed, cmdline *cl, void *data)
{
    if (cl == nullptr) {
        auto **out = static_cast<cmdline_parse_token_hdr_t **>(parsed);
        const auto index =
            static_cast<unsigned>(static_cast<cmdline_parse_token_hdr_t **>(data) - g_inst->tokens);
        *out = index < kMaxWords && (index == 0 || (index <= g.words.size() && !g.at_end))
                   ? &g.tokens[index].hdr
                   : nullptr;
        return;
    }
    const CommandResult r = g.console->execute(fmt::format("{}", fmt::join(g.words, " ")));
    put_text(stdout, r.text);
    if (g.console->quit_requested())
        cmdline_quit(cl);
}

void setup(Console &console)
{
    g.console = &console;
    for (unsigned i = 0; i < kMaxWords; ++i)
        g.tokens[i] = WordToken{{&g_word_ops, 0}, i};
    std::memset(g_inst_storage, 0, sizeof(g_inst_storage));
    g_inst = new (g_inst_storage) cmdline_parse_inst_t;
    g_inst->f = on_line;
    g_inst->data = nullptr;
    g_inst->help_str = "a flowhome command (help lists them)";
    g_ctx[0] = g_inst;
}

} // namespace

int run_console(Console &console, const volatile int *stop)
{
    setup(console);
    cmdline *cl = cmdline_stdin_new(g_ctx, "flowhome> ");
    if (cl == nullptr) {
        fmt::print(stderr, "flowhome: cannot start the console\n");
        return 1;
    }
    while (!console.quit_requested() && (stop == nullptr || *stop == 0)) {
        pollfd p{STDIN_FILENO, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        /* One character per call; an exit is end of input or `quit`. */
        const int st = cmdline_poll(cl);
        if (st == RDLINE_EXITED || st < 0)
            break;
    }
    cmdline_stdin_exit(cl);
    std::fputs("\n", stdout);
    return 0;
}

void put_text(std::FILE *f, std::string_view text) noexcept
{
    std::fwrite(text.data(), 1, text.size(), f);
    std::fflush(f);
}

int run_command_file(Console &console, const std::string &path, const volatile int *stop)
{
    std::ifstream in(path);
    if (!in) {
        fmt::print(stderr, "flowhome: cannot read command file {}: {}\n", path,
                   std::strerror(errno));
        return -1;
    }
    int failed = 0;
    std::string line;
    unsigned lineno = 0;
    while (*stop == 0 && std::getline(in, line)) {
        ++lineno;
        if (split_words(line).empty())
            continue;
        put_text(stdout, fmt::format("flowhome> {}\n", line));
        const CommandResult r = console.execute(line);
        if (r.ok) {
            put_text(stdout, r.text);
        } else {
            ++failed;
            put_text(stderr, fmt::format("{}:{}: {}", path, lineno, r.text));
        }
        if (console.quit_requested())
            break;
    }
    return failed;
}

} // namespace flowhome
