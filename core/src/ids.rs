//! Typed identifiers. Each wraps a UUID so that a tenant id can never be passed where a
//! conversation id is expected; all are UUIDv7 so that they sort by creation time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A business using Switchboard; the unit of isolation.
    TenantId
);
id_type!(
    /// One configured channel (a web-chat widget, a WhatsApp number, …) of a tenant.
    ChannelId
);
id_type!(
    /// A customer as seen on one channel.
    ContactId
);
id_type!(
    /// The ordered exchange between one contact and the tenant on one channel.
    ConversationId
);
id_type!(
    /// One delivery from a provider (or the web-chat API), stored before it is acknowledged.
    EventId
);
id_type!(
    /// A stored message of a conversation (customer, agent or human).
    MessageId
);
id_type!(
    /// One answer of the agent to one or more coalesced inbound events.
    TurnId
);
id_type!(
    /// A row of the transactional outbox.
    OutboxId
);
