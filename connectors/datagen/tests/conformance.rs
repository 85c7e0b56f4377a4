//! The Weir source conformance suite against the datagen source, through the testkit's
//! reference context under this crate's own report name (`datagen-source`), so that the report
//! carries this crate's name and version: `weir test datagen` and `weir publish datagen` read it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Range;

use weir_connector_datagen::DataGeneratorSource;
use weir_testkit::prelude::*;
use weir_testkit::reference::DatagenContext;

struct Datagen(DatagenContext);

#[async_trait]
impl SourceContext for Datagen {
    type Record = SplitRecord;
    type Source = DataGeneratorSource<SplitRecord>;

    fn name(&self) -> String {
        "datagen-source".to_owned()
    }

    fn support(&self) -> SourceSupport {
        self.0.support()
    }

    fn create_source(&self, settings: &SourceSettings) -> Result<Self::Source, ContextError> {
        self.0.create_source(settings)
    }

    fn records(&self, settings: &SourceSettings, split: usize, at: Range<u64>) -> Vec<SplitRecord> {
        self.0.records(settings, split, at)
    }
}

weir_testkit::source_suite!(datagen, || Datagen(DatagenContext::new()));
