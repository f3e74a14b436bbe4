//! The objects the sandbox stores, shaped as Malomo answers them.

use serde::{Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Unix seconds. Rendered as ISO-8601 with `Z` on orders, customers and
/// events, and without a zone on shipments (as Malomo does).
pub type Ts = i64;

fn civil(ts: Ts) -> (i64, u32, u32, u32, u32, u32) {
    // Howard Hinnant's days-to-civil: no allocation, no time-zone database.
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

pub fn iso_z(ts: Ts) -> String {
    let (y, mo, d, h, mi, s) = civil(ts);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

pub fn iso_local(ts: Ts) -> String {
    let (y, mo, d, h, mi, s) = civil(ts);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
}

fn ser_z<S: Serializer>(ts: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso_z(*ts))
}

fn ser_local<S: Serializer>(ts: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso_local(*ts))
}

fn ser_local_opt<S: Serializer>(ts: &Option<Ts>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(t) => s.serialize_str(&iso_local(*t)),
        None => s.serialize_none(),
    }
}

pub fn now() -> Ts {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Shipment statuses as Malomo documents them (there is no "exception").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Unknown,
    PreTransit,
    InTransit,
    OutForDelivery,
    Delivered,
    AvailableForPickup,
    ReturnToSender,
    Failure,
    Cancelled,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::PreTransit => "pre_transit",
            Status::InTransit => "in_transit",
            Status::OutForDelivery => "out_for_delivery",
            Status::Delivered => "delivered",
            Status::AvailableForPickup => "available_for_pickup",
            Status::ReturnToSender => "return_to_sender",
            Status::Failure => "failure",
            Status::Cancelled => "cancelled",
            Status::Error => "error",
        }
    }

    /// The statuses a merchant treats as "something went wrong", which fire
    /// the sandbox's `shipment.exception` topic.
    pub fn is_exception(self) -> bool {
        matches!(
            self,
            Status::Failure | Status::Error | Status::ReturnToSender | Status::Cancelled
        )
    }

    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Status::Unknown | Status::PreTransit | Status::InTransit | Status::OutForDelivery
        )
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Address {
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanEvent {
    #[serde(serialize_with = "ser_local")]
    pub scanned_at: Ts,
    pub status: Status,
    pub status_detail: &'static str,
    pub message: String,
    pub description: String,
    pub carrier_code: String,
    pub source: &'static str,
    pub location: Address,
}

#[derive(Debug, Clone, Serialize)]
pub struct Shipment {
    pub id: Uuid,
    pub carrier: &'static str,
    pub carrier_name: &'static str,
    pub carrier_service: Option<String>,
    pub carrier_url: String,
    pub tracking_code: String,
    pub status: Status,
    pub is_return: bool,
    pub container_type: Option<String>,
    #[serde(serialize_with = "ser_local_opt")]
    pub delivered_at: Option<Ts>,
    #[serde(serialize_with = "ser_local_opt")]
    pub estimated_delivered_at: Option<Ts>,
    #[serde(serialize_with = "ser_local_opt")]
    pub original_estimated_delivered_at: Option<Ts>,
    #[serde(serialize_with = "ser_local_opt")]
    pub guaranteed_delivered_at: Option<Ts>,
    #[serde(serialize_with = "ser_local_opt")]
    pub initial_delivery_attempted_at: Option<Ts>,
    pub origin: Address,
    pub destination: Address,
    pub scan_events: Vec<ScanEvent>,
    #[serde(serialize_with = "ser_local")]
    pub created_at: Ts,
}

/// The customer as embedded in an order: a copy of the customer record,
/// kept in step when the record changes.
#[derive(Debug, Clone, Serialize)]
pub struct OrderCustomer {
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub label: String,
    pub properties: Value,
    pub timestamp: Ts,
    pub link_back_url: Option<String>,
    pub order_id: Option<Uuid>,
    #[serde(serialize_with = "ser_z")]
    pub created_at: Ts,
    #[serde(serialize_with = "ser_z")]
    pub updated_at: Ts,
}

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: Uuid,
    pub alternate_id: Option<String>,
    pub number: String,
    pub email: Option<String>,
    pub customer: Option<OrderCustomer>,
    pub meta: Value,
    pub shipments: Vec<Shipment>,
    #[serde(serialize_with = "ser_z")]
    pub created_at: Ts,
    #[serde(serialize_with = "ser_z")]
    pub updated_at: Ts,
    /// Position in the list order; the basis of cursors.
    #[serde(skip)]
    pub seq: u64,
    /// The order's timeline, keyed by sequence number.
    #[serde(skip)]
    pub events: BTreeMap<u64, Event>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
    #[serde(serialize_with = "ser_z")]
    pub created_at: Ts,
    #[serde(serialize_with = "ser_z")]
    pub updated_at: Ts,
    #[serde(skip)]
    pub seq: u64,
    #[serde(skip)]
    pub events: BTreeMap<u64, Event>,
}

impl Customer {
    pub fn embedded(&self) -> OrderCustomer {
        OrderCustomer {
            id: self.id,
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            phone_number: self.phone_number.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub topic: String,
    pub active: bool,
    #[serde(serialize_with = "ser_z")]
    pub created_at: Ts,
    #[serde(serialize_with = "ser_z")]
    pub updated_at: Ts,
    /// Write-only: used to sign deliveries, never serialized.
    #[serde(skip)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Return {
    pub id: Uuid,
    pub order_id: Uuid,
    pub alternate_id: Option<String>,
    pub status: String,
    pub shipments: Vec<Shipment>,
    #[serde(serialize_with = "ser_z")]
    pub created_at: Ts,
    #[serde(serialize_with = "ser_z")]
    pub updated_at: Ts,
}

/// A carrier the sandbox knows: code, display name, tracking URL prefix.
#[derive(Debug)]
pub struct Carrier {
    pub code: &'static str,
    pub name: &'static str,
    pub url: &'static str,
}

pub const CARRIERS: &[Carrier] = &[
    Carrier {
        code: "usps",
        name: "USPS",
        url: "https://tools.usps.com/go/TrackConfirmAction?tLabels=",
    },
    Carrier {
        code: "ups",
        name: "UPS",
        url: "https://www.ups.com/track?tracknum=",
    },
    Carrier {
        code: "fedex",
        name: "FedEx",
        url: "https://www.fedex.com/fedextrack/?trknbr=",
    },
    Carrier {
        code: "dhl",
        name: "DHL eCommerce",
        url: "https://webtrack.dhlecs.com/?trackingnumber=",
    },
    Carrier {
        code: "dhl_express",
        name: "DHL Express",
        url: "https://www.dhl.com/en/express/tracking.html?AWB=",
    },
    Carrier {
        code: "ontrac",
        name: "OnTrac",
        url: "https://www.ontrac.com/tracking/?number=",
    },
    Carrier {
        code: "lasership",
        name: "LaserShip",
        url: "https://www.lasership.com/track/",
    },
    Carrier {
        code: "amazon",
        name: "Amazon Logistics",
        url: "https://track.amazon.com/tracking/",
    },
    Carrier {
        code: "canada_post",
        name: "Canada Post",
        url: "https://www.canadapost-postescanada.ca/track-reperage/en#/details/",
    },
    Carrier {
        code: "purolator",
        name: "Purolator",
        url: "https://www.purolator.com/en/shipping/tracker?pin=",
    },
    Carrier {
        code: "royal_mail",
        name: "Royal Mail",
        url: "https://www.royalmail.com/track-your-item#/tracking-results/",
    },
    Carrier {
        code: "australia_post",
        name: "Australia Post",
        url: "https://auspost.com.au/mypost/track/#/details/",
    },
];

pub fn carrier(code: &str) -> Option<&'static Carrier> {
    CARRIERS.iter().find(|c| c.code == code)
}

/// Webhook topics: the documented `events:created` and the dotted topics
/// the sandbox also accepts.
pub const TOPICS: &[&str] = &[
    "events:created",
    "order.created",
    "order.updated",
    "shipment.created",
    "shipment.updated",
    "shipment.delivered",
    "shipment.exception",
    "return.created",
];

pub const RETURN_STATUSES: &[&str] = &[
    "requested",
    "approved",
    "in_transit",
    "received",
    "refunded",
    "rejected",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_in_malomo_formats() {
        assert_eq!(iso_z(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_z(1_748_822_400), "2025-06-02T00:00:00Z");
        assert_eq!(iso_local(951_782_400 + 3661), "2000-02-29T01:01:01");
    }
}
