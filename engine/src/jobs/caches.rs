//! Keeps this node's caches true to writes made anywhere: list totals are recounted after a
//! write to their entity, and who may see what is worked out again after a change to users
//! or departments. On one node the writer already forgot them; with several nodes on one
//! PostgreSQL database this is how the others learn.

use crm_model::USER_ENTITY;
use crm_store::jobs::Event;

use super::{Consumer, Handled};
use crate::app::App;

pub(super) struct Caches;

impl Consumer for Caches {
    fn name(&self) -> &'static str {
        "caches"
    }

    fn shared(&self) -> bool {
        false
    }

    fn handle<'a>(&'a self, app: &'a App, event: &'a Event) -> Handled<'a> {
        Box::pin(async move {
            app.noticed_write(&event.entity);
            if event.entity == USER_ENTITY {
                // A user disabled or deleted elsewhere may hold a token this node trusts.
                app.signed_out();
            }
            Ok(())
        })
    }
}
