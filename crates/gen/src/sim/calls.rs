//! Turning a session's next action, a backend call or a crawler visit into
//! one Segment call.

use super::*;

impl Sim {
    pub(super) fn perform(
        &mut self,
        mobile: bool,
        slot: usize,
        a: Action,
        j: &mut Json,
    ) -> EventType {
        // State changes that the event itself reflects.
        match a {
            Action::Page(p) => {
                let product = match p {
                    PageRef::Product(i) => Some(i),
                    _ => None,
                };
                let s = self.session(mobile, slot);
                if !s.fresh {
                    s.referrer = Referrer::Internal(s.page);
                    s.campaign = None;
                }
                s.fresh = false;
                s.page = p;
                if product.is_some() {
                    s.product = product;
                }
            }
            Action::Screen(i) => {
                let product = (i == SCREEN_PRODUCT).then(|| self.rng.index(PRODUCTS.len()) as u8);
                let s = self.session(mobile, slot);
                s.screen = i;
                if product.is_some() {
                    s.product = product;
                }
            }
            _ => {}
        }
        let s = if mobile {
            &self.mobile[slot]
        } else {
            &self.web[slot]
        };
        let (d, p) = (s.device, s.person);
        let ctx = if mobile {
            Ctx::Mobile { device: d }
        } else {
            Ctx::Web {
                device: d,
                page: s.page,
                referrer: s.referrer,
                campaign: s.campaign,
            }
        };
        match a {
            Action::Page(page) => {
                j.begin_obj();
                j.kv_str("type", "page");
                let (name, category) = page_name(page);
                j.kv_str("name", name);
                j.kv_str("category", category);
                j.obj("properties");
                let campaign = if let Ctx::Web { campaign, .. } = ctx {
                    campaign
                } else {
                    None
                };
                let referrer = if let Ctx::Web { referrer, .. } = ctx {
                    referrer
                } else {
                    Referrer::External(0)
                };
                write_page_fields(j, page, referrer, campaign);
                if let PageRef::Product(i) = page {
                    j.kv_str("product_id", PRODUCTS[usize::from(i)].id);
                }
                j.end_obj();
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Page
            }
            Action::Screen(i) => {
                let (name, category) = SCREENS[usize::from(i)];
                j.begin_obj();
                j.kv_str("type", "screen");
                j.kv_str("name", name);
                j.kv_str("category", category);
                j.obj("properties");
                j.kv_str("name", name);
                j.kv_str("category", category);
                if i == SCREEN_PRODUCT {
                    if let Some(pr) = self.mobile[slot].product {
                        let pr = &PRODUCTS[usize::from(pr)];
                        j.kv_str("product_id", pr.id);
                        j.kv_str("product_name", pr.name);
                    }
                }
                j.kv_u64("load_time_ms", 80 + self.rng.below(900));
                j.end_obj();
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Screen
            }
            Action::Track(t) => {
                j.begin_obj();
                j.kv_str("type", "track");
                self.track_body(j, mobile, slot, t);
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Track
            }
            Action::Identify(kind) => {
                match kind {
                    Ident::Signup => self.ensure_signed_up(p, d),
                    Ident::Login | Ident::Refresh => {
                        // (Login is also how a shared device changes hands.)
                        self.devices[d as usize].logged_in = p;
                    }
                    Ident::EmailChange => {
                        self.devices[d as usize].logged_in = p;
                        let key = self.persons[p as usize].key;
                        let no = self.next_email(key);
                        let person = &mut self.persons[p as usize];
                        person.email_no = no;
                        person.email_emitted = false;
                    }
                }
                j.begin_obj();
                j.kv_str("type", "identify");
                j.obj("traits");
                self.identify_traits(j, p, kind);
                j.end_obj();
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Identify
            }
            Action::Group => {
                let c = self.persons[p as usize].company;
                j.begin_obj();
                j.kv_str("type", "group");
                self.group_body(j, c);
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Group
            }
            Action::Alias => {
                self.ensure_signed_up(p, d);
                let anon = self.devices[d as usize].anon;
                j.begin_obj();
                j.kv_str("type", "alias");
                j.key("previousId");
                j.open_str();
                self.anon_id(j, anon);
                j.close_str();
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Alias
            }
        }
    }

    /// A backend call (source 3): identify, group or a billing/fulfilment
    /// track, keyed by userId, with the anonymousId only when the backend
    /// has the visitor's cookie.
    pub(super) fn server_event(&mut self, j: &mut Json) -> EventType {
        let p = self.users[self.rng.index(self.users.len())];
        let anon = if self.rng.chance(0.35) {
            self.persons[p as usize]
                .devices
                .iter()
                .rev()
                .map(|&d| &self.devices[d as usize])
                .find(|d| d.logged_in == p)
                .map_or(NONE, |d| d.anon)
        } else {
            NONE
        };
        let company = self.persons[p as usize].company;
        let ty = match (self.rng.below(100), company != NONE) {
            (0..=29, true) | (0..=49, false) => EventType::Identify,
            (30..=74, true) => EventType::Group,
            _ => EventType::Track,
        };
        j.begin_obj();
        j.kv_str("type", ty.as_str());
        match ty {
            EventType::Identify => {
                j.obj("traits");
                self.server_traits(j, p);
                j.end_obj();
            }
            EventType::Group => self.group_body(j, company),
            _ => self.server_track(j, p),
        }
        self.ids(j, anon, p);
        self.finish(j, Ctx::Server { person: p });
        self.shape.expected_merges = self.graph.merges;
        ty
    }

    pub(super) fn bot_page(&mut self, j: &mut Json) -> EventType {
        let b = [0u8, 0, 0, 1, 1, 2][self.rng.index(6)];
        let n = self.bot_pages[usize::from(b)];
        self.bot_pages[usize::from(b)] += 1;
        // Crawlers walk the catalogue systematically.
        let page = match n % 4 {
            0 => PageRef::Product((n / 4 % PRODUCTS.len() as u32) as u8),
            1 => PageRef::Category((n / 4 % PRODUCT_CATEGORIES.len() as u32) as u8),
            2 => PageRef::Blog((n / 4 % BLOG.len() as u32) as u8),
            _ => PageRef::Static((n / 4 % PAGES.len() as u32) as u8),
        };
        j.begin_obj();
        j.kv_str("type", "page");
        let (name, category) = page_name(page);
        j.kv_str("name", name);
        j.kv_str("category", category);
        j.obj("properties");
        write_page_fields(j, page, Referrer::External(0), None);
        j.end_obj();
        self.ids(j, self.bots[usize::from(b)], NONE);
        self.finish(j, Ctx::Bot { bot: b, page });
        self.shape.expected_merges = self.graph.merges;
        EventType::Page
    }
}
