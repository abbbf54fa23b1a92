#include "portmap/port_mapper.hpp"

#include <gtest/gtest.h>

namespace punchgate {
namespace {

TEST(PortMapperSchedule, RenewsAtHalfTheLifetimeButNotTooOften) {
  EXPECT_EQ(renew_after_ms(3600), std::optional<uint64_t>(1'800'000));
  EXPECT_EQ(renew_after_ms(10), std::optional<uint64_t>(30'000));
  EXPECT_EQ(renew_after_ms(0), std::nullopt);  // permanent: never
}

TEST(PortMapperSchedule, RetriesBackOffToACap) {
  PortMapperConfig c;
  c.first_retry_ms = 60'000;
  c.max_retry_ms = 200'000;
  EXPECT_EQ(next_retry_ms(0, c), 60'000u);
  EXPECT_EQ(next_retry_ms(60'000, c), 120'000u);
  EXPECT_EQ(next_retry_ms(120'000, c), 200'000u);
  EXPECT_EQ(next_retry_ms(200'000, c), 200'000u);
}

TEST(GatewayMapping, ProtocolNames) {
  EXPECT_STREQ(to_string(MappingProtocol::NatPmp), "natpmp");
  EXPECT_STREQ(to_string(MappingProtocol::Upnp), "upnp");
}

}  // namespace
}  // namespace punchgate
