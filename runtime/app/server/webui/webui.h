// pi-server's chat page and GET /props, which the page reads to show what it talks to.
//
//   GET /              the chat page (index.html; its app.js and style.css beside it), compiled
//                      into the program; off with --no-webui (then 404)
//   GET /props         {"model", "context_length" (of one slot), "ffn_mode": "dense"|"sparse"|
//                      "hybrid", "total_slots", "slots_busy" (generating now), "max_tokens"}, as
//                      llama-server's /props tells its UI
//
// The page's files are served without an API key: a browser cannot send one when it opens a
// page, and the page holds no secret (it asks for the key and sends it with its API requests).
// /props needs the key as /v1/models does.
#pragma once

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"

namespace httplib {
class Server;
}  // namespace httplib

namespace pinfer {

struct ServerProps {
  std::string model;           // the id clients use
  int64_t context_length = 0;  // positions of one slot's session
  std::string ffn_mode;        // FfnMode() of the executor: dense, sparse or hybrid
  int total_slots = 0;         // --parallel
  int busy_slots = 0;          // generating now
  int64_t max_tokens = 0;      // --max-tokens
};

nlohmann::json PropsJson(const ServerProps& props);

// Registers a GET route for each of the page's files: "/" for index.html, "/<name>" for the others.
void RouteWebUi(httplib::Server& server);

// Whether RouteWebUi serves `path` (so that another method on it gets 405, not 404).
bool IsWebUiPath(const std::string& path);

}  // namespace pinfer
