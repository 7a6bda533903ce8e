//! All-or-nothing ingest of many records, for snapshot imports: either every record
//! applies (in order, in one transaction) or the index is left exactly as it was.

use ferry_protocol::log::Rejection;
use ferry_protocol::{RecordId, SignedRecord};

use super::{Applied, Index, IndexError, IngestError};

/// Why an all-or-nothing batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// One record was refused; nothing of the batch was written.
    #[error("record #{position} (`{log}` seq {seq}, {id}) is refused: {rejection}")]
    Rejected {
        /// Its position in the batch, from 0.
        position: usize,
        /// Its log.
        log: String,
        /// Its seq.
        seq: u64,
        /// Its id.
        id: RecordId,
        /// Why (boxed: rejections are large, and errors travel by value).
        rejection: Box<Rejection>,
    },
    /// Storage failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl Index {
    /// Validates and applies `recs` in order in one write transaction. The first refusal
    /// aborts the whole batch. With `commit` false nothing is written even when every
    /// record applies: a dry run that says whether the batch would apply now.
    /// Records already known are [`Applied::Duplicate`], so importing twice is harmless.
    pub fn ingest_all(
        &self,
        recs: &[SignedRecord],
        now_ms: u64,
        commit: bool,
    ) -> Result<Vec<Applied>, BatchError> {
        let tx = self.db.begin_write().map_err(IndexError::from)?;
        let mut out = Vec::with_capacity(recs.len());
        for (position, rec) in recs.iter().enumerate() {
            match self.ingest_in(&tx, rec, now_ms) {
                Ok(a) => out.push(a),
                Err(IngestError::Rejected(rejection)) => {
                    // Dropping the transaction aborts it: nothing of the batch stays.
                    return Err(BatchError::Rejected {
                        position,
                        log: rec.record.log.clone(),
                        seq: rec.record.seq,
                        id: rec.id,
                        rejection: Box::new(rejection),
                    });
                }
                Err(IngestError::Index(e)) => return Err(e.into()),
            }
        }
        if commit && out.iter().any(|a| *a != Applied::Duplicate) {
            tx.commit().map_err(IndexError::from)?;
        } else {
            tx.abort().map_err(IndexError::from)?;
        }
        Ok(out)
    }
}
