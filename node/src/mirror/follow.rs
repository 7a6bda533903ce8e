//! How a mirror's filter decides what its instance follows: the filter becomes the pins
//! of the mirror's index, one pin per include pattern, each carrying the filter's
//! excludes and limits. The pins machinery of the event loop then subscribes, syncs,
//! fetches and provides exactly what the filter covers, as on any pinning node.

use ferry_protocol::filter::Filter;
use ferry_protocol::pin::Pin;

use super::MirrorError;
use crate::index::Index;

/// The pins that make an index follow exactly `filter`.
pub(super) fn pins_of(filter: &Filter) -> Result<Vec<Pin>, MirrorError> {
    filter
        .include
        .iter()
        .map(|p| {
            Pin::try_from(Filter {
                include: vec![p.clone()],
                ..filter.clone()
            })
            .map_err(|e| MirrorError::BadFilter(e.to_string()))
        })
        .collect()
}

/// Makes the mirror index's pins exactly those of `filter` (a changed filter drops the
/// pins it no longer has).
pub(super) fn apply_filter(index: &Index, filter: &Filter, now_ms: u64) -> Result<(), MirrorError> {
    let wanted = pins_of(filter)?;
    for pin in index.pins()?.iter() {
        if !wanted.iter().any(|w| w.pattern() == pin.pattern()) {
            index.remove_pin(pin.pattern())?;
        }
    }
    for pin in &wanted {
        index.put_pin(pin, now_ms)?;
    }
    Ok(())
}
