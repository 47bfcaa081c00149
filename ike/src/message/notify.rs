//! Notify Message Types (RFC 7296 §3.10.1 and the IANA "IKEv2 Notify Message Types"
//! registry additions of RFC 4555, RFC 5685, RFC 5723, RFC 6023, RFC 7383, RFC 7427,
//! RFC 8019, RFC 8784, RFC 9242, RFC 9370 and others).
//!
//! Types below 16384 are errors, 16384 and above are status notifications (§3.10.1).

use super::codec::registry;

registry! {
    /// A Notify Message Type. Unknown values are kept.
    NotifyType: u16 {
        // Error types (RFC 7296 §3.10.1 unless noted).
        /// The peer sent a critical payload we do not understand (data: 1-octet type).
        UNSUPPORTED_CRITICAL_PAYLOAD = 1,
        /// A message for an IKE SA whose SPI we do not recognise.
        INVALID_IKE_SPI = 4,
        /// The major version is not supported (the header carries ours).
        INVALID_MAJOR_VERSION = 5,
        /// Malformed message after successful authentication.
        INVALID_SYNTAX = 7,
        /// A message ID outside the window.
        INVALID_MESSAGE_ID = 9,
        /// A packet for an unknown Child SA SPI.
        INVALID_SPI = 11,
        /// None of the proposals is acceptable.
        NO_PROPOSAL_CHOSEN = 14,
        /// The KE group is not the one we want (data: 2-octet group).
        INVALID_KE_PAYLOAD = 17,
        /// Authentication failed.
        AUTHENTICATION_FAILED = 24,
        /// Only one pair of traffic selectors is acceptable.
        SINGLE_PAIR_REQUIRED = 34,
        /// No more Child SAs are accepted on this IKE SA.
        NO_ADDITIONAL_SAS = 35,
        /// No internal address could be assigned.
        INTERNAL_ADDRESS_FAILURE = 36,
        /// A CP payload was expected.
        FAILED_CP_REQUIRED = 37,
        /// The traffic selectors are unacceptable.
        TS_UNACCEPTABLE = 38,
        /// A packet did not match the Child SA's selectors.
        INVALID_SELECTORS = 39,
        /// MOBIKE: the addresses are unacceptable (RFC 4555).
        UNACCEPTABLE_ADDRESSES = 40,
        /// MOBIKE: unexpected NAT (RFC 4555).
        UNEXPECTED_NAT_DETECTED = 41,
        /// Mobile IPv6 bootstrapping (RFC 5026).
        USE_ASSIGNED_HOA = 42,
        /// A simultaneous exchange is in progress; retry later.
        TEMPORARY_FAILURE = 43,
        /// The Child SA to rekey does not exist.
        CHILD_SA_NOT_FOUND = 44,
        /// Group key management (RFC 9838).
        INVALID_GROUP_ID = 45,
        /// Group key management (RFC 9838).
        AUTHORIZATION_FAILED = 46,

        // Status types.
        /// Delete all other IKE SAs with this peer.
        INITIAL_CONTACT = 16384,
        /// Window size for outstanding requests (data: 4-octet size).
        SET_WINDOW_SIZE = 16385,
        /// More traffic selectors would have been acceptable.
        ADDITIONAL_TS_POSSIBLE = 16386,
        /// IPComp is supported (data: CPI and transform).
        IPCOMP_SUPPORTED = 16387,
        /// NAT detection: hash of the source SPIs, address and port.
        NAT_DETECTION_SOURCE_IP = 16388,
        /// NAT detection: hash of the destination SPIs, address and port.
        NAT_DETECTION_DESTINATION_IP = 16389,
        /// Stateless cookie (§2.6).
        COOKIE = 16390,
        /// Request for transport mode.
        USE_TRANSPORT_MODE = 16391,
        /// HTTP certificate lookup is supported.
        HTTP_CERT_LOOKUP_SUPPORTED = 16392,
        /// The Child SA being rekeyed (SPI field).
        REKEY_SA = 16393,
        /// TFC padding is not supported.
        ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
        /// Non-first fragments are sent on the same SA.
        NON_FIRST_FRAGMENTS_ALSO = 16395,
        /// MOBIKE is supported (RFC 4555).
        MOBIKE_SUPPORTED = 16396,
        /// MOBIKE additional IPv4 address (RFC 4555).
        ADDITIONAL_IP4_ADDRESS = 16397,
        /// MOBIKE additional IPv6 address (RFC 4555).
        ADDITIONAL_IP6_ADDRESS = 16398,
        /// MOBIKE: no additional addresses (RFC 4555).
        NO_ADDITIONAL_ADDRESSES = 16399,
        /// MOBIKE: update the SA addresses (RFC 4555).
        UPDATE_SA_ADDRESSES = 16400,
        /// MOBIKE return routability cookie (RFC 4555).
        COOKIE2 = 16401,
        /// MOBIKE: NATs are not allowed (RFC 4555).
        NO_NATS_ALLOWED = 16402,
        /// Reauthentication lifetime (RFC 4478).
        AUTH_LIFETIME = 16403,
        /// Multiple authentication exchanges are supported (RFC 4739).
        MULTIPLE_AUTH_SUPPORTED = 16404,
        /// Another authentication follows (RFC 4739).
        ANOTHER_AUTH_FOLLOWS = 16405,
        /// Redirect is supported (RFC 5685).
        REDIRECT_SUPPORTED = 16406,
        /// Redirect to another gateway (RFC 5685).
        REDIRECT = 16407,
        /// Redirected from a gateway (RFC 5685).
        REDIRECTED_FROM = 16408,
        /// Session resumption ticket lifetime (RFC 5723).
        TICKET_LT_OPAQUE = 16409,
        /// Session resumption ticket request (RFC 5723).
        TICKET_REQUEST = 16410,
        /// Session resumption ticket acknowledgement (RFC 5723).
        TICKET_ACK = 16411,
        /// Session resumption ticket refusal (RFC 5723).
        TICKET_NACK = 16412,
        /// Session resumption opaque ticket (RFC 5723).
        TICKET_OPAQUE = 16413,
        /// Link identifier (RFC 5739).
        LINK_ID = 16414,
        /// Wrapped ESP (RFC 5840).
        USE_WESP_MODE = 16415,
        /// Robust header compression (RFC 5857).
        ROHC_SUPPORTED = 16416,
        /// EAP-only authentication (RFC 5998).
        EAP_ONLY_AUTHENTICATION = 16417,
        /// Childless IKE SA initiation (RFC 6023).
        CHILDLESS_IKEV2_SUPPORTED = 16418,
        /// Quick crash detection (RFC 6290).
        QUICK_CRASH_DETECTION = 16419,
        /// Message ID synchronisation supported (RFC 6311).
        IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420,
        /// Replay counter synchronisation supported (RFC 6311).
        IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421,
        /// Message ID synchronisation (RFC 6311).
        IKEV2_MESSAGE_ID_SYNC = 16422,
        /// Replay counter synchronisation (RFC 6311).
        IPSEC_REPLAY_COUNTER_SYNC = 16423,
        /// Secure password methods (RFC 6467).
        SECURE_PASSWORD_METHODS = 16424,
        /// PSK persistence (RFC 6631).
        PSK_PERSIST = 16425,
        /// PSK confirmation (RFC 6631).
        PSK_CONFIRM = 16426,
        /// EAP re-authentication (RFC 6867).
        ERX_SUPPORTED = 16427,
        /// IP flow mobility (RFC 6757).
        IFOM_CAPABILITY = 16428,
        /// Sender request ID (draft-yeung-g-ikev2).
        SENDER_REQUEST_ID = 16429,
        /// IKEv2 message fragmentation is supported (RFC 7383).
        IKEV2_FRAGMENTATION_SUPPORTED = 16430,
        /// Supported signature hash algorithms (RFC 7427; data: 2-octet hash IDs).
        SIGNATURE_HASH_ALGORITHMS = 16431,
        /// IKE SA cloning supported (RFC 7791).
        CLONE_IKE_SA_SUPPORTED = 16432,
        /// Clone this IKE SA (RFC 7791).
        CLONE_IKE_SA = 16433,
        /// Client puzzle (RFC 8019).
        PUZZLE = 16434,
        /// Use a post-quantum preshared key (RFC 8784).
        USE_PPK = 16435,
        /// PPK identity (RFC 8784).
        PPK_IDENTITY = 16436,
        /// AUTH without PPK (RFC 8784).
        NO_PPK_AUTH = 16437,
        /// IKE_INTERMEDIATE exchange supported (RFC 9242).
        INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
        /// IPv4 allowed (RFC 8983).
        IP4_ALLOWED = 16439,
        /// IPv6 allowed (RFC 8983).
        IP6_ALLOWED = 16440,
        /// Additional key exchange (RFC 9370).
        ADDITIONAL_KEY_EXCHANGE = 16441,
        /// Use aggregation and fragmentation mode (RFC 9347).
        USE_AGGFRAG = 16442,
    }
}

impl NotifyType {
    /// True for error types (below 16384, §3.10.1).
    pub fn is_error(self) -> bool {
        self.0 < 16384
    }

    /// True for status types (16384 and above).
    pub fn is_status(self) -> bool {
        !self.is_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_classes() {
        assert_eq!(NotifyType::COOKIE.0, 16390);
        assert_eq!(NotifyType::COOKIE.to_string(), "COOKIE");
        assert_eq!(NotifyType(60000).to_string(), "NotifyType#60000");
        assert!(NotifyType::NO_PROPOSAL_CHOSEN.is_error());
        assert!(!NotifyType::SET_WINDOW_SIZE.is_error());
        assert_eq!(
            format!("{:?}", NotifyType::IKEV2_FRAGMENTATION_SUPPORTED),
            "IKEV2_FRAGMENTATION_SUPPORTED(16430)"
        );
        // Registry order is ascending and values are unique.
        assert!(NotifyType::KNOWN.windows(2).all(|w| w[0] < w[1]));
    }
}
