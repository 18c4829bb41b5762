//! The metric families that carry a `tenant` label, and the one rule that decides that label.
//!
//! A tenant label makes a per-tenant dashboard possible, but every tenant multiplies the series
//! a Prometheus server stores, and tenants are created by the thousand on a busy platform. So
//! [`TenantMetrics`] gives the first `max_tenant_labels` distinct tenants it sees (in this
//! process) a label of their own and reports every later one as `tenant="other"`: the number
//! of series stays bounded whatever happens, and totals stay exact (a sum over `tenant` is
//! still every message). Which tenants get a label depends on the order the process met them,
//! so a restart may change it; dashboards that need one given tenant should raise the limit.
//!
//! The label is the tenant's id: it never changes (a slug may be renamed, which would split a
//! tenant's series in two), it is not a secret (admin URLs carry it), and every call site
//! already holds it, so choosing the label costs no lookup on the hot path.
//!
//! The handles are cached: after the first message of a (tenant, channel, result), counting
//! another one is a read lock, a hash lookup and an atomic add, with no allocation (the
//! `metrics` macros build a label vector every time they are given non-literal labels).
//! Families without a tenant label are recorded with the macros where they happen; all
//! families are described, and bucketed, in the runtime's `http::metrics`.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use metrics::Counter;

use crate::ids::TenantId;
use crate::model::ChannelKind;

/// The label value of every tenant past the limit.
pub const OTHER_TENANTS: &str = "other";

/// Inbound customer messages stored (`tenant`, `channel`, `result`).
pub const INBOUND_TOTAL: &str = "switchboard_inbound_total";
/// Outbound delivery outcomes (`tenant`, `channel`, `result`).
pub const OUTBOUND_TOTAL: &str = "switchboard_outbound_total";
/// Webhooks refused before anything was stored (`tenant`, `channel`, `reason`).
pub const WEBHOOK_REJECTED_TOTAL: &str = "switchboard_webhook_rejected_total";

/// A counter family labelled by tenant and channel, with a third label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// [`INBOUND_TOTAL`]; the third label is `result`.
    Inbound,
    /// [`OUTBOUND_TOTAL`]; the third label is `result`.
    Outbound,
    /// [`WEBHOOK_REJECTED_TOTAL`]; the third label is `reason`.
    WebhookRejected,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Inbound => INBOUND_TOTAL,
            Family::Outbound => OUTBOUND_TOTAL,
            Family::WebhookRejected => WEBHOOK_REJECTED_TOTAL,
        }
    }

    fn third_label(self) -> &'static str {
        match self {
            Family::Inbound | Family::Outbound => "result",
            Family::WebhookRejected => "reason",
        }
    }
}

/// The tenant-labelled counters of one application (one per process in production; the tests
/// build several applications in one process, each with its own limit).
#[derive(Debug)]
pub struct TenantMetrics {
    max_tenants: usize,
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Tenants that have a label of their own; never more than `max_tenants`.
    labelled: HashSet<TenantId>,
    /// Registered counters; `None` as the tenant is [`OTHER_TENANTS`].
    counters: HashMap<CounterKey, Counter>,
}

type CounterKey = (Family, Option<TenantId>, ChannelKind, &'static str);

impl TenantMetrics {
    /// Gives at most `max_tenants` tenants a label of their own (0: every tenant is `other`).
    pub fn new(max_tenants: usize) -> TenantMetrics {
        TenantMetrics {
            max_tenants,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// One more inbound message of `tenant` on `channel` (`accepted`, `duplicate`, …).
    pub fn inbound(&self, tenant: TenantId, channel: ChannelKind, result: &'static str) {
        self.counter(Family::Inbound, tenant, channel, result)
            .increment(1);
    }

    /// One more delivery outcome of `tenant` on `channel` (`sent`, `retry`, `failed`, …).
    pub fn outbound(&self, tenant: TenantId, channel: ChannelKind, result: &'static str) {
        self.counter(Family::Outbound, tenant, channel, result)
            .increment(1);
    }

    /// One more webhook of `tenant`'s `channel` refused for `reason`.
    pub fn webhook_rejected(&self, tenant: TenantId, channel: ChannelKind, reason: &'static str) {
        self.counter(Family::WebhookRejected, tenant, channel, reason)
            .increment(1);
    }

    /// The label value `tenant` is reported under: its id while it is among the first
    /// `max_tenants` tenants seen, [`OTHER_TENANTS`] otherwise. Seeing a tenant admits it when
    /// there is room.
    pub fn label(&self, tenant: TenantId) -> String {
        match self.slot(tenant) {
            Some(t) => t.0.to_string(),
            None => OTHER_TENANTS.to_owned(),
        }
    }

    /// The counter of `family` for `tenant`, `channel` and `value`, registered on first use.
    pub fn counter(
        &self,
        family: Family,
        tenant: TenantId,
        channel: ChannelKind,
        value: &'static str,
    ) -> Counter {
        {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let slot = if inner.labelled.contains(&tenant) {
                Some(Some(tenant))
            } else if inner.labelled.len() >= self.max_tenants {
                Some(None)
            } else {
                None // Not seen yet and there is room: admitted below.
            };
            if let Some(slot) = slot {
                if let Some(c) = inner.counters.get(&(family, slot, channel, value)) {
                    return c.clone();
                }
            }
        }
        let slot = self.slot(tenant);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner
            .counters
            .entry((family, slot, channel, value))
            .or_insert_with(|| {
                let tenant = match slot {
                    Some(t) => t.0.to_string(),
                    None => OTHER_TENANTS.to_owned(),
                };
                metrics::counter!(
                    family.name(),
                    "tenant" => tenant,
                    "channel" => channel.as_str(),
                    family.third_label() => value,
                )
            })
            .clone()
    }

    /// `Some(tenant)` when `tenant` has (or now gets) a label of its own, `None` for `other`.
    fn slot(&self, tenant: TenantId) -> Option<TenantId> {
        {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if inner.labelled.contains(&tenant) {
                return Some(tenant);
            }
            if inner.labelled.len() >= self.max_tenants {
                return None;
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.labelled.contains(&tenant) || inner.labelled.len() < self.max_tenants {
            inner.labelled.insert(tenant);
            Some(tenant)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId(uuid::Uuid::now_v7())
    }

    #[test]
    fn the_first_tenants_get_their_id_and_later_ones_share_other() {
        let m = TenantMetrics::new(2);
        let (a, b, c, d) = (tenant(), tenant(), tenant(), tenant());
        assert_eq!(m.label(a), a.0.to_string());
        assert_eq!(m.label(b), b.0.to_string());
        assert_eq!(m.label(c), OTHER_TENANTS);
        assert_eq!(m.label(d), OTHER_TENANTS);
        // A labelled tenant keeps its label; an `other` one never takes a freed place (there
        // is none: places are never given back).
        assert_eq!(m.label(a), a.0.to_string());
        assert_eq!(m.label(c), OTHER_TENANTS);
    }

    #[test]
    fn no_tenant_gets_a_label_when_the_limit_is_zero() {
        let m = TenantMetrics::new(0);
        assert_eq!(m.label(tenant()), OTHER_TENANTS);
    }

    #[test]
    fn counters_are_cached_per_label_not_per_tenant() {
        let m = TenantMetrics::new(1);
        let first = tenant();
        m.inbound(first, ChannelKind::Webchat, "accepted");
        for _ in 0..50 {
            m.inbound(tenant(), ChannelKind::Webchat, "accepted");
        }
        m.outbound(first, ChannelKind::Sms, "sent");
        let inner = m.inner.read().unwrap();
        // Fifty tenants past the limit share one `other` counter: memory stays bounded.
        assert_eq!(inner.counters.len(), 3);
        assert_eq!(inner.labelled.len(), 1);
    }
}
