//! Shipment progression, like Malomo's public tracking simulator:
//! unknown -> pre_transit -> in_transit -> out_for_delivery -> one final
//! state chosen by the tracking code's prefix.

use super::input::ShipmentInput;
use super::model::{Address, ScanEvent, Shipment, Status, Ts};
use uuid::Uuid;

/// The final state a tracking code leads to.
pub fn final_status(tracking_code: &str) -> Status {
    let prefix = tracking_code.get(..2).map(str::to_ascii_uppercase);
    match prefix.as_deref() {
        Some("DE") => Status::Delivered,
        Some("AV") => Status::AvailableForPickup,
        Some("RE") => Status::ReturnToSender,
        Some("FA") => Status::Failure,
        Some("CA") => Status::Cancelled,
        Some("ER") => Status::Error,
        _ => Status::Delivered,
    }
}

/// The status after `current`, or None when the shipment is final.
pub fn next_status(current: Status, tracking_code: &str) -> Option<Status> {
    match current {
        Status::Unknown => Some(Status::PreTransit),
        Status::PreTransit => Some(Status::InTransit),
        Status::InTransit => Some(Status::OutForDelivery),
        Status::OutForDelivery => Some(final_status(tracking_code)),
        _ => None,
    }
}

pub const HUBS: &[(&str, &str, &str)] = &[
    ("Memphis", "TN", "38118"),
    ("Louisville", "KY", "40209"),
    ("Indianapolis", "IN", "46241"),
    ("Columbus", "OH", "43217"),
    ("Dallas", "TX", "75261"),
    ("Atlanta", "GA", "30320"),
    ("Chicago", "IL", "60666"),
    ("Ontario", "CA", "91761"),
];

fn hub(code: &str) -> Address {
    let h = code
        .bytes()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    let (city, state, zip) = HUBS[h % HUBS.len()];
    Address {
        city: Some(city.into()),
        state: Some(state.into()),
        postal_code: Some(zip.into()),
        country: Some("US".into()),
    }
}

fn place(a: &Address) -> String {
    match (&a.city, &a.state) {
        (Some(c), Some(s)) => format!("{c}, {s}"),
        (Some(c), None) => c.clone(),
        _ => "the local facility".into(),
    }
}

/// The scan a carrier would report on reaching `status`.
fn scan_for(ship: &Shipment, status: Status, at: Ts) -> ScanEvent {
    let (detail, location, message) = match status {
        Status::PreTransit => (
            "label_created",
            ship.origin.clone(),
            "Shipping label created, carrier awaiting item".to_string(),
        ),
        Status::InTransit => {
            let h = hub(&ship.tracking_code);
            let m = format!("Departed {} sort facility", place(&h));
            ("departed", h, m)
        }
        Status::OutForDelivery => (
            "out_for_delivery",
            ship.destination.clone(),
            "Out for delivery".to_string(),
        ),
        Status::Delivered => (
            "delivered",
            ship.destination.clone(),
            "Delivered, front door/porch".to_string(),
        ),
        Status::AvailableForPickup => {
            let m = format!(
                "Available for pickup at the {} post office",
                place(&ship.destination)
            );
            ("available_for_pickup", ship.destination.clone(), m)
        }
        Status::ReturnToSender => (
            "return_to_sender",
            ship.destination.clone(),
            "Undeliverable as addressed, returning to sender".to_string(),
        ),
        Status::Failure => {
            let m = format!(
                "Delivery attempt failed: no secure location available. Package returned to the {} distribution center",
                place(&ship.destination)
            );
            ("delivery_attempt_failed", ship.destination.clone(), m)
        }
        Status::Cancelled => (
            "cancelled",
            ship.origin.clone(),
            "Shipment cancelled by the sender".to_string(),
        ),
        Status::Error => (
            "bad_tracking_code_error",
            Address::default(),
            "The carrier does not recognise this tracking code".to_string(),
        ),
        Status::Unknown => (
            "unknown",
            Address::default(),
            "No tracking information yet".to_string(),
        ),
    };
    ScanEvent {
        scanned_at: at,
        status,
        status_detail: detail,
        description: message.clone(),
        message,
        carrier_code: status.as_str().to_ascii_uppercase(),
        source: "carrier",
        location,
    }
}

/// Moves a shipment one step, appending its scan event. Returns the new
/// status, or None when it was already final.
pub fn advance(ship: &mut Shipment, at: Ts) -> Option<Status> {
    let next = next_status(ship.status, &ship.tracking_code)?;
    let scan = scan_for(ship, next, at);
    ship.scan_events.push(scan);
    ship.status = next;
    match next {
        Status::PreTransit => {
            let eta = at + 4 * 86_400;
            ship.estimated_delivered_at = Some(eta);
            ship.original_estimated_delivered_at.get_or_insert(eta);
        }
        Status::Delivered => {
            ship.delivered_at = Some(at);
            ship.initial_delivery_attempted_at.get_or_insert(at);
        }
        Status::Failure | Status::AvailableForPickup => {
            ship.initial_delivery_attempted_at.get_or_insert(at);
        }
        _ => {}
    }
    Some(next)
}

pub const WAREHOUSE: (&str, &str, &str) = ("Reno", "NV", "89502");

/// A new shipment in status `unknown` from request input.
pub fn new_shipment(
    id: Uuid,
    input: &ShipmentInput,
    destination: Option<Address>,
    at: Ts,
) -> Shipment {
    let (city, state, zip) = WAREHOUSE;
    Shipment {
        id,
        carrier: input.carrier.code,
        carrier_name: input.carrier.name,
        carrier_service: input.carrier_service.clone(),
        carrier_url: format!("{}{}", input.carrier.url, input.tracking_code),
        tracking_code: input.tracking_code.clone(),
        status: Status::Unknown,
        is_return: input.is_return,
        container_type: input.container_type.clone(),
        delivered_at: None,
        estimated_delivered_at: None,
        original_estimated_delivered_at: None,
        guaranteed_delivered_at: None,
        initial_delivery_attempted_at: None,
        origin: Address {
            city: Some(city.into()),
            state: Some(state.into()),
            postal_code: Some(zip.into()),
            country: Some("US".into()),
        },
        destination: input
            .destination
            .clone()
            .or(destination)
            .unwrap_or_default(),
        scan_events: Vec::new(),
        created_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::carrier;

    #[test]
    fn prefix_picks_the_final_state() {
        assert_eq!(final_status("FA123"), Status::Failure);
        assert_eq!(final_status("er9"), Status::Error);
        assert_eq!(final_status("1Z999"), Status::Delivered);
        assert_eq!(final_status("X"), Status::Delivered);
    }

    #[test]
    fn a_shipment_walks_four_steps_then_stops() {
        let Some(usps) = carrier("usps") else {
            panic!("usps is a known carrier")
        };
        let input = ShipmentInput {
            carrier: usps,
            tracking_code: "RE1".into(),
            carrier_service: None,
            container_type: None,
            is_return: false,
            destination: None,
        };
        let mut s = new_shipment(Uuid::nil(), &input, None, 0);
        let steps: Vec<Status> = std::iter::from_fn(|| advance(&mut s, 1)).collect();
        assert_eq!(
            steps,
            vec![
                Status::PreTransit,
                Status::InTransit,
                Status::OutForDelivery,
                Status::ReturnToSender
            ]
        );
        assert_eq!(s.scan_events.len(), 4);
    }
}
