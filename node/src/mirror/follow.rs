//! How a mirror's filter decides what its instance follows.

use ferry_protocol::filter::Filter;

use crate::index::{Index, IndexError};

/// Makes the mirror's index follow exactly `filter`.
pub(super) fn apply_filter(_index: &Index, _filter: &Filter) -> Result<(), IndexError> {
    Ok(())
}
