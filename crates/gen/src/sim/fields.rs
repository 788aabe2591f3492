//! Writers of fields several calls share: pages, URLs, IPs, currencies,
//! and which source a channel's event goes to.

use crate::catalog::*;
use crate::json::Json;

use super::model::{PageRef, Referrer};

/// Source for a channel (0 web, 1 mobile, 2 server): sources are assigned
/// round-robin to channels (1 → web, 2 → mobile, 3 → server, 4 → web, …);
/// a channel without a source of its own falls back to `channel % n`.
pub(super) fn source_for(channel: u32, sources: u32, pick: u64) -> u32 {
    let own = if sources > channel {
        (sources - 1 - channel) / 3 + 1
    } else {
        0
    };
    if own == 0 {
        channel % sources + 1
    } else {
        channel + 1 + 3 * (pick % u64::from(own)) as u32
    }
}

pub(super) fn currency(country: &str) -> &'static str {
    match country {
        "CA" => "CAD",
        "GB" => "GBP",
        "DE" | "FR" | "ES" | "NL" => "EUR",
        "SE" => "SEK",
        "BR" => "BRL",
        "AU" => "AUD",
        "JP" => "JPY",
        _ => "USD",
    }
}

pub(super) fn write_ip(j: &mut Json, v: u64) {
    const FIRST: [u64; 10] = [24, 73, 81, 88, 98, 151, 176, 185, 201, 213];
    j.open_str();
    j.digits(FIRST[(v % 10) as usize]);
    for s in [8, 16, 24] {
        j.raw(".");
        j.digits((v >> s) & 0xff);
    }
    j.close_str();
}

pub(super) fn page_name(p: PageRef) -> (&'static str, &'static str) {
    match p {
        PageRef::Static(i) => {
            let (_, name, category, _) = PAGES[usize::from(i)];
            (name, category)
        }
        PageRef::Product(_) => ("Product", "Shop"),
        PageRef::Category(_) => ("Category", "Shop"),
        PageRef::Search(_) => ("Search Results", "Shop"),
        PageRef::Blog(_) => ("Blog Post", "Content"),
    }
}

pub(super) fn write_path(j: &mut Json, p: PageRef) {
    match p {
        PageRef::Static(i) => j.raw(PAGES[usize::from(i)].0),
        PageRef::Product(i) => {
            j.raw("/products/");
            j.raw(PRODUCTS[usize::from(i)].slug);
        }
        PageRef::Category(i) => {
            j.raw("/c/");
            j.raw(PRODUCT_CATEGORIES[usize::from(i)].1);
        }
        PageRef::Search(_) => j.raw("/search"),
        PageRef::Blog(i) => {
            j.raw("/blog/");
            j.raw(BLOG[usize::from(i)].0);
        }
    }
}

pub(super) fn write_search(j: &mut Json, p: PageRef, campaign: Option<u8>) {
    if let PageRef::Search(q) = p {
        j.raw("?q=");
        j.raw(SEARCHES[usize::from(q)].1);
    } else if let Some(c) = campaign {
        j.raw(CAMPAIGNS[usize::from(c)].3);
    }
}

pub(super) fn write_url(j: &mut Json, p: PageRef, campaign: Option<u8>) {
    j.raw(SITE);
    write_path(j, p);
    write_search(j, p, campaign);
}

/// `path`, `referrer`, `search`, `title`, `url` of a page.
pub(super) fn write_page_fields(
    j: &mut Json,
    p: PageRef,
    referrer: Referrer,
    campaign: Option<u8>,
) {
    j.key("path");
    j.open_str();
    write_path(j, p);
    j.close_str();
    j.key("referrer");
    match referrer {
        Referrer::External(i) => j.str(REFERRERS[usize::from(i)]),
        Referrer::Campaign(c) => j.str(CAMPAIGNS[usize::from(c)].4),
        Referrer::Internal(r) => {
            j.open_str();
            write_url(j, r, None);
            j.close_str();
        }
    }
    j.key("search");
    j.open_str();
    write_search(j, p, campaign);
    j.close_str();
    j.key("title");
    match p {
        PageRef::Static(i) => j.str(PAGES[usize::from(i)].3),
        PageRef::Product(i) => j.str_cat(&[PRODUCTS[usize::from(i)].name, " | ShopWave"]),
        PageRef::Category(i) => j.str_cat(&[PRODUCT_CATEGORIES[usize::from(i)].0, " | ShopWave"]),
        PageRef::Search(q) => j.str_cat(&[
            "Search results for “",
            SEARCHES[usize::from(q)].0,
            "” | ShopWave",
        ]),
        PageRef::Blog(i) => j.str_cat(&[BLOG[usize::from(i)].1, " — The ShopWave Journal"]),
    }
    j.key("url");
    j.open_str();
    write_url(j, p, campaign);
    j.close_str();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_channel() {
        // One source: everything goes to source 1.
        assert_eq!(
            (0..3).map(|c| source_for(c, 1, 0)).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        // Two: web 1, mobile 2, server falls back to 1.
        assert_eq!(
            (0..3).map(|c| source_for(c, 2, 0)).collect::<Vec<_>>(),
            [1, 2, 1]
        );
        assert_eq!(
            (0..3).map(|c| source_for(c, 3, 0)).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        // Five: web uses 1 and 4, mobile 2 and 5, server 3.
        assert_eq!(source_for(0, 5, 1), 4);
        assert_eq!(source_for(1, 5, 1), 5);
        assert_eq!(source_for(2, 5, 1), 3);
    }
}
