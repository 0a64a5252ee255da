//! Tables: rows and cells captured while the table is open, written as a pipe table when it
//! closes (a header row from `<thead>` or an all-`<th>` first row, else an empty one; colspan
//! padded), or as paragraphs when it has one column.

use lol_html::html_content::Element;

use super::{Close, Converter};
use crate::crawl::html::classify::Tag;
use crate::crawl::html::text::non_empty;

#[derive(Default)]
pub(super) struct TableState {
    pub(super) rows: Vec<Row>,
    pub(super) in_head: bool,
    pub(super) caption: Option<String>,
}

pub(super) struct Row {
    cells: Vec<(String, usize)>,
    header: bool,
    all_th: bool,
}

impl Converter {
    pub(super) fn open_table(&mut self) -> Close {
        if self.writer.is_inline_only() || self.flat_tables > 0 {
            self.flat_tables += 1;
            self.writer.space();
            return Close::Space;
        }
        self.writer.block_break(2);
        self.tables.push(TableState::default());
        Close::Table
    }

    pub(super) fn open_table_part(&mut self, tag: Tag, el: &Element<'_, '_>) -> Close {
        if self.flat_tables > 0 || self.tables.is_empty() {
            self.writer.space();
            return Close::Space;
        }
        let Some(table) = self.tables.last_mut() else {
            return Close::Nothing;
        };
        match tag {
            Tag::Row => {
                table.rows.push(Row {
                    cells: Vec::new(),
                    header: table.in_head,
                    all_th: true,
                });
                Close::Row
            }
            Tag::Cell { header } => {
                if table.rows.is_empty() {
                    table.rows.push(Row {
                        cells: Vec::new(),
                        header: table.in_head,
                        all_th: true,
                    });
                }
                let colspan = el
                    .get_attribute("colspan")
                    .and_then(|span| span.trim().parse::<usize>().ok())
                    .unwrap_or(1)
                    .clamp(1, 64);
                self.writer.begin_capture();
                Close::Cell { header, colspan }
            }
            Tag::Caption => {
                self.writer.begin_capture();
                Close::Caption
            }
            Tag::TableHead => {
                table.in_head = true;
                Close::TableHead
            }
            _ => Close::Nothing,
        }
    }

    pub(super) fn close_cell(&mut self, header: bool, colspan: usize) {
        let content = self.writer.end_capture();
        if let Some(row) = self.tables.last_mut().and_then(|t| t.rows.last_mut()) {
            row.all_th &= header;
            row.cells
                .push((content.replace('\n', " ").trim().to_owned(), colspan));
        }
    }

    pub(super) fn close_caption(&mut self) {
        let caption = self.writer.end_capture();
        if let Some(table) = self.tables.last_mut() {
            table.caption = non_empty(caption.trim().to_owned());
        }
    }

    pub(super) fn write_table(&mut self, table: TableState) {
        if let Some(caption) = &table.caption {
            self.writer.block_break(2);
            self.writer.raw(caption);
            self.writer.block_break(2);
        }
        let rows: Vec<Row> = table
            .rows
            .into_iter()
            .filter(|row| row.cells.iter().any(|(text, _)| !text.is_empty()))
            .collect();
        let columns = rows
            .iter()
            .map(|row| row.cells.iter().map(|(_, span)| span).sum::<usize>())
            .max()
            .unwrap_or(0);
        if columns <= 1 {
            // A layout table, or a list in disguise: its cells are paragraphs.
            for row in &rows {
                for (text, _) in &row.cells {
                    self.writer.block_break(2);
                    self.writer.raw(text);
                }
            }
            self.writer.block_break(2);
            return;
        }
        let mut lines = Vec::with_capacity(rows.len() + 2);
        let mut body = rows.iter();
        let header = rows.first().filter(|row| row.header || row.all_th);
        match header {
            Some(row) => {
                body.next();
                lines.push(table_row(row, columns));
            }
            None => lines.push(format!("|{}", " |".repeat(columns))),
        }
        lines.push(format!("|{}", " --- |".repeat(columns)));
        lines.extend(body.map(|row| table_row(row, columns)));
        self.writer.table(&lines);
    }
}

fn table_row(row: &Row, columns: usize) -> String {
    let mut line = String::from("|");
    let mut used = 0;
    for (text, span) in &row.cells {
        line.push(' ');
        line.push_str(text);
        line.push_str(" |");
        for _ in 1..*span {
            line.push_str(" |");
        }
        used += span;
    }
    for _ in used..columns {
        line.push_str(" |");
    }
    line
}
