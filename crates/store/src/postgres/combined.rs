//! Several writes sent as one statement: each is a data-modifying `WITH` query of one
//! `SELECT`. PostgreSQL runs every part, on one snapshot, and checks constraints at the end
//! of the statement, so the parts must not touch the same rows (a group commit's never do:
//! each table is written by one part). One statement instead of one per table spares
//! PostgreSQL a bind, an execution start and a result per table, which is most of what a
//! small group commit costs it.
//!
//! The text depends on which parts are present, so a batch prepares one of a few statements
//! (cached per connection).

use tokio_postgres::types::ToSql;

/// A parameter value owned by the statement.
pub(super) type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// The parts added so far, and their parameters in order.
#[derive(Default)]
pub(super) struct Combined<'a> {
    parts: Vec<String>,
    params: Vec<Param<'a>>,
    /// The part whose rows the statement counts (it ends in `RETURNING`).
    counted: Option<usize>,
}

impl<'a> Combined<'a> {
    /// Adds `statement`, whose parameters `$1`…`$n` are `params`. With `counted`, the
    /// statement returns how many rows this part returned.
    pub fn add(&mut self, statement: &str, params: Vec<Param<'a>>, counted: bool) {
        if counted {
            self.counted = Some(self.parts.len());
        }
        self.parts.push(renumber(statement, self.params.len()));
        self.params.extend(params);
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The statement: one row of one `bigint`, the count of the counted part (0 without).
    pub fn sql(&self) -> String {
        let mut sql = String::from("WITH ");
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("w{i} AS ({part})"));
        }
        match self.counted {
            Some(i) => sql.push_str(&format!(" SELECT count(*) FROM w{i}")),
            None => sql.push_str(" SELECT 0::bigint"),
        }
        sql
    }

    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect()
    }
}

/// `sql` with every parameter `$n` made `$(n + offset)`. (The statements given here have no
/// `$` but in parameters: no dollar quoting, no `$` in a literal.)
fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{renumber, Combined};

    #[test]
    fn parameters_are_numbered_across_parts() {
        assert_eq!(renumber("a = $1 AND b = $12", 3), "a = $4 AND b = $15");
        assert_eq!(renumber("no parameters", 5), "no parameters");
        let mut c = Combined::default();
        assert!(c.is_empty());
        c.add(
            "INSERT INTO t SELECT * FROM unnest($1::text[])",
            vec![Box::new(vec!["x"])],
            false,
        );
        c.add(
            "UPDATE u SET v = $2 WHERE k = $1 RETURNING 1",
            vec![Box::new("k"), Box::new("v")],
            true,
        );
        assert_eq!(
            c.sql(),
            "WITH w0 AS (INSERT INTO t SELECT * FROM unnest($1::text[])), \
             w1 AS (UPDATE u SET v = $3 WHERE k = $2 RETURNING 1) SELECT count(*) FROM w1"
        );
        assert_eq!(c.params().len(), 3);
    }
}
