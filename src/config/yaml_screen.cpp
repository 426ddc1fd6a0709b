/* SPDX-License-Identifier: BSD-3-Clause */
#include "yaml_screen.hpp"

#include <algorithm>
#include <optional>
#include <string_view>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "flowhome/config.hpp"
#include "yaml_reader.hpp"

namespace flowhome::config_detail {

namespace {

/*
 * yaml-cpp 0.7 misreads a NUL byte without a word (the scalar "a\0b" comes
 * out as "a\x08"): refuse it, since a node file is text.
 */
void reject_nul(const std::string &text, const std::string &name)
{
    const size_t at = text.find('\0');
    if (at == std::string::npos)
        return;
    const size_t line_start = text.rfind('\n', at);
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(at), '\n');
    const auto column = at - (line_start == std::string::npos ? 0 : line_start + 1) + 1;
    throw ConfigError(name, static_cast<int>(line), static_cast<int>(column), "",
                      "a NUL byte: a node file is text");
}

/* The first construct of the file that the loader refuses. */
struct Refusal {
    YAML::Mark mark;
    std::string message;
};

/* How a tag is written: "!!str" rather than yaml-cpp's "tag:yaml.org,2002:str". */
std::string written_tag(const std::string &tag)
{
    constexpr std::string_view core = "tag:yaml.org,2002:";
    if (tag.starts_with(core))
        return "!!" + tag.substr(core.size());
    if (tag.starts_with("!"))
        return tag;
    return "!<" + tag + ">";
}

/*
 * Records where each document starts (the loader needs their number) and the
 * first anchor or tag.
 *
 * Aliases are refused rather than followed: the tree shares an anchored
 * node, but the loader reads each alias in full, so one list of 65535 ports
 * aliased by a few thousand VIPs took hours to check. Refusing, not
 * expanding, keeps a node file what it reads as.
 *
 * Tags are refused because they would decide a value's type against the
 * loader's rules (a quoted scalar is a string, a key says what it takes):
 * "!!str 1" would be a string to yaml-cpp, "!!int true" an integer.
 */
class Screen : public YAML::EventHandler {
public:
    explicit Screen(std::string_view text) : text_(text)
    {
        // yaml-cpp's marks count from after a UTF-8 byte order mark.
        if (text_.starts_with("\xef\xbb\xbf"))
            text_.remove_prefix(3);
    }

    std::vector<YAML::Mark> starts;
    std::optional<Refusal> refusal;

    void OnDocumentStart(const YAML::Mark &mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark &mark, YAML::anchor_t anchor) override { node(mark, "?", anchor); }
    // An alias names an anchor before it, refused there (and yaml-cpp refuses
    // an alias of no anchor as a syntax error).
    void OnAlias(const YAML::Mark &, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark &mark, const std::string &tag, YAML::anchor_t anchor,
                  const std::string &) override
    {
        node(mark, tag, anchor);
    }
    void OnSequenceStart(const YAML::Mark &mark, const std::string &tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override
    {
        node(mark, tag, anchor);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark &mark, const std::string &tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override
    {
        node(mark, tag, anchor);
    }
    void OnMapEnd() override {}

private:
    void node(const YAML::Mark &mark, const std::string &tag, YAML::anchor_t anchor)
    {
        if (anchor != YAML::NullAnchor)
            refuse(mark, "a YAML anchor (&name): anchors and aliases (*name) are not accepted; "
                         "write each value out in full");
        if (is_tagged(mark, tag))
            refuse(mark, fmt::format("a YAML tag ({}): tags are not accepted; quote a string, "
                                     "write other values plain",
                                     written_tag(tag)));
    }

    /*
     * yaml-cpp tags an untagged plain node "?" and a quoted or block scalar
     * "!", as it does a node with the explicit tag "!": that one is told apart
     * by its first character, where the node's mark points.
     */
    bool is_tagged(const YAML::Mark &mark, const std::string &tag) const
    {
        if (tag.empty() || tag == "?")
            return false;
        if (tag != "!")
            return true;
        const auto at = static_cast<size_t>(mark.pos);
        return mark.pos >= 0 && at < text_.size() && text_[at] == '!';
    }

    void refuse(const YAML::Mark &mark, std::string message)
    {
        if (!refusal)
            refusal = Refusal{mark, std::move(message)};
    }

    std::string_view text_;
};

} // namespace

void screen_yaml(const std::string &text, const std::string &name)
{
    reject_nul(text, name);
    // Count documents first, stopping at two: yaml-cpp 0.7's LoadAll() can loop
    // forever on some invalid input (after "!tag," it reports empty documents
    // at the same position without end; found by fuzz/fuzz_config.cpp).
    std::istringstream in(text);
    YAML::Parser parser(in);
    Screen screen(text);
    while (screen.starts.size() < 2 && parser.HandleNextDocument(screen)) {
    }
    if (screen.starts.empty())
        throw ConfigError(name, 0, 0, "", "no YAML document: the file is empty or only comments");
    if (screen.starts.size() > 1)
        throw ConfigError(name, mark_line(screen.starts[1]), mark_column(screen.starts[1]), "",
                          "text after the first YAML document; a node file holds exactly one "
                          "document");
    if (screen.refusal)
        throw ConfigError(name, mark_line(screen.refusal->mark), mark_column(screen.refusal->mark),
                          "", screen.refusal->message);
}

} // namespace flowhome::config_detail
