//! Demo data: a small merchant's orders, customers, shipments in every
//! status and a couple of returns, a pure function of the seed. Timestamps
//! are offsets back from a fixed epoch so tests can rely on them.

use super::input::Field;
use super::input::ShipmentInput;
use super::model::{Address, Status, carrier};
use super::orders::{CustomerInput, OrderInput};
use super::rng::SplitMix;
use super::store::Store;
use serde_json::{Map, Value, json};

/// All seeded timestamps lie before this instant (2025-06-02T00:00:00Z).
pub const SEED_EPOCH: i64 = 1_748_822_400;

/// The demo customer whose latest package had a failed delivery attempt.
pub const DEMO_EMAIL: &str = "sarah.smith@example.com";

const FIRST: &[&str] = &[
    "James", "Maria", "Robert", "Linda", "Michael", "Aisha", "David", "Priya", "Daniel", "Emily",
    "Carlos", "Hannah", "Kevin", "Olivia", "Marcus", "Sofia", "Ethan", "Grace", "Noah", "Chloe",
    "Liam", "Zoe", "Owen", "Nina",
];
const LAST: &[&str] = &[
    "Johnson", "Garcia", "Nguyen", "Brown", "Patel", "Miller", "Davis", "Lopez", "Wilson",
    "Anderson", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Clark", "Lewis", "Walker", "Hall",
    "Young",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Columbus", "OH", "43215"),
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Portland", "OR", "97205"),
    ("Nashville", "TN", "37203"),
    ("Raleigh", "NC", "27601"),
    ("Minneapolis", "MN", "55401"),
    ("Phoenix", "AZ", "85004"),
    ("Boston", "MA", "02108"),
    ("Sacramento", "CA", "95814"),
];
const CARRIER_CODES: &[&str] = &[
    "usps",
    "ups",
    "fedex",
    "dhl",
    "ontrac",
    "dhl_express",
    "amazon",
    "lasership",
];
const SERVICES: &[&str] = &["Ground", "Priority Mail", "2Day", "Express", "Standard"];

/// Target statuses, oldest orders first: old orders have settled, the
/// newest are still moving. Every documented status appears.
fn target_for(i: usize, n: usize, rng: &mut SplitMix) -> Status {
    let from_end = n - 1 - i;
    match from_end {
        0..=2 => Status::Unknown,
        3..=6 => Status::PreTransit,
        7..=12 => Status::InTransit,
        13..=16 => Status::OutForDelivery,
        _ => *rng.pick(&[
            Status::Delivered,
            Status::Delivered,
            Status::Delivered,
            Status::Delivered,
            Status::Delivered,
            Status::Delivered,
            Status::AvailableForPickup,
            Status::ReturnToSender,
            Status::Failure,
            Status::Cancelled,
            Status::Error,
        ]),
    }
}

fn steps_to(status: Status) -> usize {
    match status {
        Status::Unknown => 0,
        Status::PreTransit => 1,
        Status::InTransit => 2,
        Status::OutForDelivery => 3,
        _ => 4,
    }
}

fn tracking_code(rng: &mut SplitMix, carrier: &str, target: Status) -> String {
    let prefix = match target {
        Status::AvailableForPickup => "AV",
        Status::ReturnToSender => "RE",
        Status::Failure => "FA",
        Status::Cancelled => "CA",
        Status::Error => "ER",
        _ => "",
    };
    if !prefix.is_empty() {
        return format!("{prefix}{}", rng.digits(14));
    }
    match carrier {
        "ups" => format!("1Z{}", rng.digits(16)),
        "usps" => format!("9400{}", rng.digits(18)),
        "amazon" => format!("TBA{}", rng.digits(12)),
        _ => rng.digits(12),
    }
}

struct Person {
    first: &'static str,
    last: &'static str,
    email: String,
    city: (&'static str, &'static str, &'static str),
}

fn address(city: (&str, &str, &str)) -> Address {
    Address {
        city: Some(city.0.into()),
        state: Some(city.1.into()),
        postal_code: Some(city.2.into()),
        country: Some("US".into()),
    }
}

pub fn load(st: &mut Store, seed: u64) {
    let mut rng = SplitMix::new(seed);
    st.id_source = Some(SplitMix::new(seed ^ 0xa5a5_5a5a_0f0f_f0f0));
    let mut people: Vec<Person> = (0..24)
        .map(|i| {
            let first = *rng.pick(FIRST);
            let last = *rng.pick(LAST);
            let email = format!(
                "{}.{}{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                i
            );
            Person {
                first,
                last,
                email,
                city: *rng.pick(CITIES),
            }
        })
        .collect();
    people.push(Person {
        first: "Sarah",
        last: "Smith",
        email: DEMO_EMAIL.into(),
        city: CITIES[0],
    });
    let sarah = people.len() - 1;

    let n = 80;
    // Sarah's orders: two delivered earlier, the latest one failed.
    let sarah_orders = [n - 40, n - 25, n - 19];
    let mut return_candidates = Vec::new();
    for i in 0..n {
        let created = SEED_EPOCH - (n - i) as i64 * 8 * 3600 - 60 * 3600;
        let (who, target) = if let Some(k) = sarah_orders.iter().position(|&o| o == i) {
            (
                sarah,
                if k == 2 {
                    Status::Failure
                } else {
                    Status::Delivered
                },
            )
        } else {
            (rng.below(sarah), target_for(i, n, &mut rng))
        };
        let p = &people[who];
        let carrier_code = if who == sarah {
            "usps"
        } else {
            *rng.pick(CARRIER_CODES)
        };
        let Some(c) = carrier(carrier_code) else {
            continue;
        };
        let mut ships = vec![ShipmentInput {
            carrier: c,
            tracking_code: tracking_code(&mut rng, carrier_code, target),
            carrier_service: Some((*rng.pick(SERVICES)).to_string()),
            container_type: Some("package".into()),
            is_return: false,
            destination: Some(address(p.city)),
        }];
        // Some orders ship in two boxes; the second one always arrives.
        if who != sarah && rng.below(5) == 0 {
            let code2 = *rng.pick(CARRIER_CODES);
            if let Some(c2) = carrier(code2) {
                ships.push(ShipmentInput {
                    carrier: c2,
                    tracking_code: tracking_code(&mut rng, code2, Status::Delivered),
                    carrier_service: Some("Ground".into()),
                    container_type: Some("package".into()),
                    is_return: false,
                    destination: Some(address(p.city)),
                });
            }
        }
        let number = (1001 + i).to_string();
        let mut meta = Map::new();
        meta.insert(
            "shopify_order".into(),
            json!({"order_id": 450_789_469u64 + i as u64}),
        );
        meta.insert(
            "channel".into(),
            Value::from(if rng.below(3) == 0 { "pos" } else { "online" }),
        );
        let input = OrderInput {
            alternate_id: Field::Set(format!("SHOP-{number}")),
            number: Field::Set(number),
            email: Field::Set(p.email.clone()),
            customer: Field::Set(CustomerInput {
                email: Some(p.email.clone()),
                first_name: Some(p.first.into()),
                last_name: Some(p.last.into()),
                phone_number: Some(format!("+1555{}", rng.digits(7))),
            }),
            meta: Field::Set(meta),
            shipments: Some(ships),
        };
        let Ok(id) = st.create_order(input, created) else {
            continue;
        };
        let count = st.orders.get(&id).map(|o| o.shipments.len()).unwrap_or(0);
        for idx in 0..count {
            let goal = if idx == 0 { target } else { Status::Delivered };
            for step in 0..steps_to(goal) {
                // label after 2 h, then roughly a day per hop
                let at = created + 2 * 3600 + step as i64 * 20 * 3600 + rng.below(3600) as i64;
                st.advance_order_shipment(id, idx, at);
            }
        }
        if target == Status::Delivered && who != sarah {
            return_candidates.push(id);
        }
    }
    for (k, order_id) in return_candidates.iter().rev().take(2).enumerate() {
        let at = SEED_EPOCH - 30 * 3600 + k as i64 * 3600;
        let body = json!({
            "order_id": order_id.to_string(),
            "alternate_id": format!("RMA-{}", 5001 + k),
            "status": if k == 0 { "in_transit" } else { "requested" },
            "shipments": [{"carrier": "usps", "tracking_code": format!("DE{}", rng.digits(14))}],
        });
        let Value::Object(obj) = body else { continue };
        if let Ok(rid) = st.create_return(&obj, at)
            && k == 0
        {
            st.advance_return_shipment(rid, 0, at + 3600);
            st.advance_return_shipment(rid, 0, at + 20 * 3600);
        }
    }
    st.id_source = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data() {
        let (mut a, mut b) = (Store::new(100_000), Store::new(100_000));
        load(&mut a, 7);
        load(&mut b, 7);
        let ja =
            serde_json::to_string(&a.orders.rows.values().collect::<Vec<_>>()).unwrap_or_default();
        let jb =
            serde_json::to_string(&b.orders.rows.values().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(ja, jb);
        assert!(a.orders.len() >= 80);
    }

    #[test]
    fn sarahs_latest_order_failed_at_a_distribution_center() {
        let mut st = Store::new(100_000);
        load(&mut st, 42);
        let latest = st
            .orders
            .rows
            .values()
            .rev()
            .find(|o| o.email.as_deref() == Some(DEMO_EMAIL));
        let ship = latest.and_then(|o| o.shipments.first());
        assert_eq!(ship.map(|s| s.status), Some(Status::Failure));
        let scan = ship.and_then(|s| s.scan_events.last());
        assert!(
            scan.is_some_and(|e| e.status_detail == "delivery_attempt_failed"
                && e.message.contains("distribution center")
                && e.location.city.is_some())
        );
    }
}
