// The HTTP/1.1 request parser on hand-written messages: the same requests come out however the
// bytes are split (all at once, byte by byte, at every boundary), chunked bodies with extensions
// and trailers, every limit, and the framings a smuggling attack relies on are refused.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "server/http_parser.h"

using namespace glide::server;

namespace {

struct Outcome {
  std::vector<HttpRequest> requests;
  int error = 0;  // the status of the error that ended parsing, 0 for none
  std::string message;
};

// Feeds `pieces` one after another, taking each request as it completes.
Outcome parse_pieces(const std::vector<std::string>& pieces, HttpLimits limits = {}) {
  HttpParser parser(limits);
  Outcome out;
  for (const std::string& piece : pieces) {
    std::string_view rest = piece;
    for (;;) {
      rest.remove_prefix(parser.feed(rest));
      if (parser.state() == HttpParser::State::kComplete) {
        out.requests.push_back(parser.take());
        continue;
      }
      if (parser.state() == HttpParser::State::kError) {
        out.error = parser.error_status();
        out.message = parser.error_message();
        return out;
      }
      REQUIRE(rest.empty());  // the parser wants more: it took everything
      break;
    }
  }
  return out;
}

Outcome parse(const std::string& bytes, HttpLimits limits = {}) {
  return parse_pieces({bytes}, limits);
}

std::vector<std::string> bytes_one_by_one(const std::string& s) {
  std::vector<std::string> out;
  for (const char c : s) out.emplace_back(1, c);
  return out;
}

bool same_requests(const std::vector<HttpRequest>& a, const std::vector<HttpRequest>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].method != b[i].method || a[i].target != b[i].target || a[i].path != b[i].path ||
        a[i].query != b[i].query || a[i].minor_version != b[i].minor_version ||
        a[i].headers != b[i].headers || a[i].body != b[i].body ||
        a[i].keep_alive != b[i].keep_alive || a[i].expects_continue != b[i].expects_continue)
      return false;
  return true;
}

// Three requests in one buffer: a GET, a POST sized by Content-Length, a chunked POST with
// extensions and a trailer; then a POST with no body at all.
const std::string kPipelined =
    "GET /v2/health/live?verbose=1 HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n"
    "POST /v1/models/m:predict HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
    "Content-Type: application/json\r\n\r\n{\"k\": 3}\r\n\r\n"
    "POST /v2/models/m/infer HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;name=value\r\nhello\r\n6 ; ext\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    "POST /v1/models/m:reload HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

}  // namespace

TEST_CASE("pipelined requests come out the same however the bytes are split") {
  const Outcome whole = parse(kPipelined);
  REQUIRE(whole.error == 0);
  REQUIRE(whole.requests.size() == 4);
  const auto& r = whole.requests;
  CHECK(r[0].method == "GET");
  CHECK(r[0].path == "/v2/health/live");
  CHECK(r[0].query == "verbose=1");
  CHECK(r[0].body.empty());
  CHECK(*r[0].header("host") == "a");
  CHECK(*r[0].header("x-empty") == "");
  CHECK(r[0].keep_alive);
  CHECK(r[1].body == "{\"k\": 3}\r\n\r\n");
  CHECK(*r[1].header("content-type") == "application/json");
  CHECK(r[2].body == "hello world");
  CHECK(r[2].header("x-trailer") == nullptr);  // trailers never become headers
  CHECK(r[3].method == "POST");
  CHECK(r[3].body.empty());
  CHECK(!r[3].keep_alive);

  CHECK(same_requests(parse_pieces(bytes_one_by_one(kPipelined)).requests, r));
  for (std::size_t cut = 1; cut < kPipelined.size(); ++cut) {
    const Outcome split = parse_pieces({kPipelined.substr(0, cut), kPipelined.substr(cut)});
    CHECK_MESSAGE(split.error == 0, "cut at " << cut);
    CHECK_MESSAGE(same_requests(split.requests, r), "cut at " << cut);
  }
}

TEST_CASE("a POST with neither Content-Length nor Transfer-Encoding ends with its headers") {
  const std::string head = "POST /v1/models/m:reload HTTP/1.1\r\nHost: x\r\n\r\n";
  HttpParser parser;
  CHECK(parser.feed(head + "GET /") == head.size());  // stops where the next request starts
  REQUIRE(parser.state() == HttpParser::State::kComplete);
  CHECK(parser.take().body.empty());
  CHECK(parser.state() == HttpParser::State::kIdle);
  // Empty lines between requests (some clients end a body with one) begin no request.
  CHECK(parser.feed("\r\n\n") == 3);
  CHECK(parser.state() == HttpParser::State::kIdle);
  parser.feed("\r");
  CHECK(parser.state() == HttpParser::State::kHead);
}

TEST_CASE("line ends, empty lines before a request, percent-decoding and target forms") {
  const Outcome o = parse(
      "\r\n\r\nGET /v1/models/a%20b%3Ax/metadata?q=%20 HTTP/1.1\nHost: x\n\n"
      "GET http://example.com:8080/v2/health/ready HTTP/1.1\r\n\r\n"
      "OPTIONS * HTTP/1.1\r\n\r\n"
      "GET /bad%zz%4 HTTP/1.1\r\n\r\n");
  REQUIRE(o.error == 0);
  REQUIRE(o.requests.size() == 4);
  CHECK(o.requests[0].path == "/v1/models/a b:x/metadata");
  CHECK(o.requests[0].query == "q=%20");
  CHECK(o.requests[1].path == "/v2/health/ready");
  CHECK(o.requests[2].path == "*");
  CHECK(o.requests[3].path == "/bad%zz%4");  // not percent-encodings: kept as sent
}

TEST_CASE("keep-alive follows HTTP/1.1 and HTTP/1.0 rules; Expect: 100-continue is noted") {
  auto keep = [](const std::string& version, const std::string& connection) {
    const Outcome o = parse("GET / " + version + "\r\n" + connection + "\r\n");
    REQUIRE(o.requests.size() == 1);
    return o.requests[0].keep_alive;
  };
  CHECK(keep("HTTP/1.1", ""));
  CHECK(!keep("HTTP/1.1", "Connection: close\r\n"));
  CHECK(!keep("HTTP/1.1", "Connection: keep-alive, CLOSE\r\n"));
  CHECK(!keep("HTTP/1.0", ""));
  CHECK(keep("HTTP/1.0", "Connection: Keep-Alive\r\n"));
  CHECK(!keep("HTTP/1.0", "Connection: keep-alive\r\nConnection: close\r\n"));
  CHECK(keep("HTTP/1.2", ""));  // a later 1.x minor is read as 1.1
  const Outcome expect =
      parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
  REQUIRE(expect.requests.size() == 1);
  CHECK(expect.requests[0].expects_continue);
  CHECK(!parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").requests[0].expects_continue);
}

TEST_CASE("chunked bodies: sizes, extensions, trailers, limits and malformed chunks") {
  const std::string head = "POST /p HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n";
  auto body_of = [&](const std::string& chunks, HttpLimits limits = {}) {
    const Outcome o = parse(head + chunks, limits);
    return std::make_pair(o.error, o.requests.empty() ? std::string() : o.requests[0].body);
  };
  CHECK(body_of("A\r\n0123456789\r\n0\r\n\r\n") == std::make_pair(0, std::string("0123456789")));
  CHECK(body_of("000003\r\nabc\r\n0000\r\n\r\n") == std::make_pair(0, std::string("abc")));
  CHECK(body_of("0\r\n\r\n") == std::make_pair(0, std::string()));
  CHECK(body_of("2;a=\"q;x\";b\r\nxy\r\n0;end\r\nT1: 1\r\nT2: 2\r\n\r\n").second == "xy");

  HttpLimits small;
  small.max_body_bytes = 10;
  CHECK(body_of("a\r\n0123456789\r\n0\r\n\r\n", small).first == 0);  // exactly the limit
  CHECK(body_of("6\r\n012345\r\n5\r\n01234\r\n0\r\n\r\n", small).first == 413);  // over, summed
  CHECK(body_of("b\r\n", small).first == 413);  // refused at the size, before any data
  CHECK(body_of("ffffffffffffffffffffffffffff\r\n").first == 413);  // no overflow
  // Refused byte by byte too (the limit does not depend on how the bytes arrive).
  CHECK(parse_pieces(bytes_one_by_one(head + "6\r\n012345\r\n5\r\n01234\r\n0\r\n\r\n"), small)
            .error == 413);

  CHECK(body_of("zz\r\nab\r\n0\r\n\r\n").first == 400);    // not hex
  CHECK(body_of("\r\n").first == 400);                     // no size
  CHECK(body_of("3\r\nabcd\r\n0\r\n\r\n").first == 400);   // data longer than its size
  CHECK(body_of("3 x\r\nabc\r\n0\r\n\r\n").first == 400);  // junk after the size
  CHECK(body_of("-3\r\nabc\r\n0\r\n\r\n").first == 400);
  CHECK(body_of("0\r\nbad trailer\r\n\r\n").first == 400);
  HttpLimits short_lines;
  short_lines.max_chunk_line = 16;
  CHECK(body_of("1;" + std::string(40, 'e') + "\r\nx\r\n0\r\n\r\n", short_lines).first == 400);
  HttpLimits few_headers;
  few_headers.max_headers = 3;
  CHECK(body_of("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", few_headers).first == 431);  // trailers count
}

TEST_CASE("framings that could smuggle a request are refused") {
  auto status = [](const std::string& headers) {
    return parse("POST /p HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n0\r\n\r\n").error;
  };
  CHECK(status("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") == 400);
  CHECK(status("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") == 400);
  CHECK(status("Content-Length: 3\r\nContent-Length: 3\r\n") == 400);
  CHECK(status("Content-Length: 3\r\nContent-Length: 4\r\n") == 400);
  CHECK(status("Content-Length: 3, 3\r\n") == 400);
  CHECK(status("Content-Length: +3\r\n") == 400);
  CHECK(status("Content-Length: -1\r\n") == 400);
  CHECK(status("Content-Length: 0x10\r\n") == 400);
  CHECK(status("Content-Length: 99999999999999999999999\r\n") == 400);
  CHECK(status("Transfer-Encoding: gzip\r\n") == 400);
  CHECK(status("Transfer-Encoding: gzip, chunked\r\n") == 400);
  CHECK(status("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") == 400);
  CHECK(status("Transfer-Encoding : chunked\r\n") == 400);  // space before the colon
  CHECK(status("Content-Length: 1\r\n x\r\n") == 400);      // obsolete line folding
  CHECK(status("X: a\rContent-Length: 3\r\n") == 400);      // a bare CR
  CHECK(status(std::string("X: a\0b\r\n", 8)) == 400);      // NUL in a value
  CHECK(status("Bad Name: 1\r\n") == 400);
  CHECK(status("NoColon\r\n") == 400);
  CHECK(status(": empty name\r\n") == 400);
  CHECK(parse("POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").error == 400);
  // Sized bodies stay in step: the bytes after one are the next request, never part of it.
  const Outcome o =
      parse("POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n");
  REQUIRE(o.requests.size() == 2);
  CHECK(o.requests[0].body == "abc");
  CHECK(o.requests[1].path == "/b");
}

TEST_CASE("request line, URI, header and body limits") {
  HttpLimits limits;
  limits.max_request_line = 64;
  limits.max_header_bytes = 128;
  limits.max_headers = 4;
  limits.max_body_bytes = 16;
  const std::string line64 = "GET /" + std::string(64 - 14, 'a') + " HTTP/1.1";
  REQUIRE(line64.size() == 64);
  CHECK(parse(line64 + "\r\n\r\n", limits).error == 0);
  CHECK(parse(line64 + "\n\n", limits).error == 0);
  CHECK(parse("GET /" + std::string(51, 'a') + " HTTP/1.1\r\n\r\n", limits).error == 414);
  CHECK(parse("GET /" + std::string(51, 'a') + " HTTP/1.1\n\n", limits).error == 414);
  // A line that never ends is refused once it is too long, not buffered.
  CHECK(parse_pieces(bytes_one_by_one("GET /" + std::string(1000, 'a')), limits).error == 414);
  CHECK(parse("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", limits).error == 0);
  CHECK(parse("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", limits).error ==
        431);
  CHECK(parse("GET / HTTP/1.1\r\nA: " + std::string(200, 'x') + "\r\n\r\n", limits).error == 431);
  CHECK(parse_pieces(bytes_one_by_one("GET / HTTP/1.1\r\nA: " + std::string(200, 'x')), limits)
            .error == 431);
  CHECK(
      parse("POST / HTTP/1.1\r\nContent-Length: 16\r\n\r\n" + std::string(16, 'b'), limits).error ==
      0);
  CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", limits).error == 413);
}

TEST_CASE("malformed request lines and versions") {
  CHECK(parse("GET /\r\n\r\n").error == 400);
  CHECK(parse("GET  / HTTP/1.1\r\n\r\n").error == 400);
  CHECK(parse("GET / x HTTP/1.1\r\n\r\n").error == 400);
  CHECK(parse("G(T / HTTP/1.1\r\n\r\n").error == 400);
  CHECK(parse("GET relative HTTP/1.1\r\n\r\n").error == 400);
  CHECK(parse("GET / HTTP/1.1x\r\n\r\n").error == 400);
  CHECK(parse("GET / http/1.1\r\n\r\n").error == 400);
  CHECK(parse("GET / HTTP/2.0\r\n\r\n").error == 505);
  CHECK(parse("GET /\x01 HTTP/1.1\r\n\r\n").error == 400);
  // What is known of a failed request stays readable (for the access log).
  HttpParser parser;
  parser.feed("POST /v1/models/m:predict HTTP/1.1\r\nContent-Length: x\r\n\r\n");
  CHECK(parser.state() == HttpParser::State::kError);
  CHECK(parser.partial().path == "/v1/models/m:predict");
  CHECK(parser.error_message().find("Content-Length") != std::string::npos);
  CHECK(parser.feed("GET / HTTP/1.1\r\n\r\n") == 0);  // an error is final
}
