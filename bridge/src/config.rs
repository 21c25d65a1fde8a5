//! What a bridge bridges and how it reaches its peers: a TOML file, and
//! command-line flags on top of it.
//!
//! ```toml
//! namespace = "prod"                  # the local namespace (and key namespace)
//! # dir = "/dev/shm/shmbus-1000"      # base directory, default as for Bus::open
//! listen = ["tcp/0.0.0.0:7447"]       # Zenoh endpoints to listen on (none by default)
//! connect = ["tcp/10.0.0.2:7447"]     # Zenoh endpoints to connect to
//! multicast_scouting = false          # find peers by UDP multicast (off by default)
//! allow = ["market_data", "signals*"] # topics to bridge, names or globs
//! express = ["signals*"]              # topics sent without batching
//! ```

use std::path::PathBuf;

use serde::Deserialize;

/// The bridge's configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The local namespace; also the `<namespace>` of the Zenoh keys.
    pub namespace: Option<String>,
    /// The base directory (default: `$SHMBUS_DIR`, else
    /// `/dev/shm/shmbus-<uid>`).
    pub dir: Option<PathBuf>,
    /// Zenoh endpoints to listen on, such as `tcp/0.0.0.0:7447`. None by
    /// default: a bridge that only connects opens no port.
    #[serde(default)]
    pub listen: Vec<String>,
    /// Zenoh endpoints of peers to connect to.
    #[serde(default)]
    pub connect: Vec<String>,
    /// Whether to find peers by UDP multicast scouting (off by default).
    #[serde(default)]
    pub multicast_scouting: bool,
    /// Topics to bridge both ways: names, or globs with `*` and `?`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Topics (names or globs) whose records are sent express: each
    /// record in its own network message, not batched. Lower latency, less
    /// throughput.
    #[serde(default)]
    pub express: Vec<String>,
    /// Zenoh's lease, in milliseconds: a peer silent for this long is
    /// taken for gone and its session closed (Zenoh's default, 10 s, when
    /// unset).
    pub lease_ms: Option<u64>,
    /// How long the exporter of a `Backpressure` topic waits, holding the
    /// local publishers back, for a remote importer to come back once the
    /// last one went away (a restart, a reconnect), before it sends on
    /// with nobody to receive. Unset: [`DEFAULT_RECONNECT_HOLD_MS`]; 0:
    /// never wait.
    pub reconnect_hold_ms: Option<u64>,
}

/// Zenoh's lease when [`Config::lease_ms`] is unset (Zenoh's own default).
pub const DEFAULT_LEASE_MS: u64 = 10_000;

/// The default of [`Config::reconnect_hold_ms`].
pub const DEFAULT_RECONNECT_HOLD_MS: u64 = 5_000;

impl Config {
    /// Parses a TOML document.
    ///
    /// # Errors
    ///
    /// The document is not valid TOML or has unknown or mistyped keys.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The Zenoh session configuration: peer mode, these endpoints, and
    /// multicast scouting on only if asked.
    ///
    /// # Errors
    ///
    /// An endpoint Zenoh refuses.
    pub fn zenoh(&self) -> Result<zenoh::Config, String> {
        let mut z = zenoh::Config::default();
        let set = |z: &mut zenoh::Config, key: &str, value: String| {
            z.insert_json5(key, &value)
                .map_err(|e| format!("zenoh setting {key} = {value}: {e}"))
        };
        set(&mut z, "mode", "\"peer\"".into())?;
        // Explicit even when empty: left unset, a peer listens on
        // `tcp/[::]:0`.
        set(&mut z, "listen/endpoints", json_list(&self.listen))?;
        set(&mut z, "connect/endpoints", json_list(&self.connect))?;
        set(
            &mut z,
            "scouting/multicast/enabled",
            self.multicast_scouting.to_string(),
        )?;
        if let Some(lease) = self.lease_ms {
            set(&mut z, "transport/link/tx/lease", lease.to_string())?;
        }
        Ok(z)
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key_and_refuses_unknown_ones() {
        let c = Config::from_toml(
            r#"
            namespace = "prod"
            dir = "/tmp/x"
            listen = ["tcp/0.0.0.0:7447"]
            connect = ["tcp/10.0.0.2:7447"]
            multicast_scouting = true
            allow = ["market_data", "signals*"]
            express = ["signals*"]
            lease_ms = 1500
            reconnect_hold_ms = 0
            "#,
        )
        .expect("valid config");
        assert_eq!(c.namespace.as_deref(), Some("prod"));
        assert_eq!(c.dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(c.listen, ["tcp/0.0.0.0:7447"]);
        assert_eq!(c.connect, ["tcp/10.0.0.2:7447"]);
        assert!(c.multicast_scouting);
        assert_eq!(c.allow, ["market_data", "signals*"]);
        assert_eq!(c.express, ["signals*"]);
        assert_eq!((c.lease_ms, c.reconnect_hold_ms), (Some(1500), Some(0)));
        c.zenoh().expect("a lease Zenoh takes");
        let err = Config::from_toml("namespce = \"x\"").expect_err("typo refused");
        assert!(err.contains("namespce"), "{err}");
        let empty = Config::from_toml("").expect("empty config");
        assert!(!empty.multicast_scouting && empty.listen.is_empty());
    }
}
