//! Reports: the settlement report, read from Trustly's CSV into rows.

use super::{Answer, Error, Payments, Prepared};
use crate::trustly::{
    self,
    methods::{SettlementReportCsv, SettlementRow, settlement_rows},
};

impl Payments {
    /// ViewAutomaticSettlementDetailsCSV, its CSV read into rows.
    pub async fn settlement_report(
        &self,
        prepared: Prepared,
    ) -> Result<Answer<Vec<SettlementRow>>, Error> {
        let answer: Answer<SettlementReportCsv> = self.call(prepared).await?;
        answer.try_map(|report| {
            settlement_rows(&report.csv).map_err(|e| {
                let error = trustly::Error::UnexpectedData(e);
                super::execute::log_failure(&error);
                Error::from(error)
            })
        })
    }
}
