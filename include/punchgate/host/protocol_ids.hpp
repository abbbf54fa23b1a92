// Protocol ids punchgate speaks, and its identify agentVersion.
#pragma once

#include <string>
#include <string_view>

namespace punchgate {

inline constexpr std::string_view kPingProtocol = "/ipfs/ping/1.0.0";
inline constexpr std::string_view kIdentifyProtocol = "/ipfs/id/1.0.0";
inline constexpr std::string_view kIdentifyPushProtocol = "/ipfs/id/push/1.0.0";
// Sent as identify protocolVersion (names our protocol family; informational per the spec).
inline constexpr std::string_view kIdentifyProtocolVersion = "/punchgate/id/1.0.0";
// Our own DHT namespace, so we never join (or pollute) the IPFS Amino DHT.
inline constexpr std::string_view kKadProtocol = "/punchgate/kad/1.0.0";
inline constexpr std::string_view kRelayHopProtocol = "/libp2p/circuit/relay/0.2.0/hop";
inline constexpr std::string_view kRelayStopProtocol = "/libp2p/circuit/relay/0.2.0/stop";
inline constexpr std::string_view kDcutrProtocol = "/libp2p/dcutr";
inline constexpr std::string_view kAutonatProtocol = "/libp2p/autonat/1.0.0";
inline constexpr std::string_view kNoiseProtocol = "/noise";
inline constexpr std::string_view kYamuxProtocol = "/yamux/1.0.0";
inline constexpr std::string_view kTunnelProtocol = "/punchgate/tunnel/1.0.0";

// "punchgate/<version>"; PUNCHGATE_VERSION comes from CMake (pg_core's public definitions).
inline std::string agent_version() { return "punchgate/" PUNCHGATE_VERSION; }

}  // namespace punchgate
