//! What every payload carries besides its body: identifiers, `context`, and
//! the closing fields (`messageId`, timestamps, `writeKey`).

use super::*;

impl Sim {
    /// anonymousId + userId of a device's current state.
    pub(super) fn device_ids(&mut self, j: &mut Json, d: u32) {
        let dev = &self.devices[d as usize];
        let (anon, user) = (dev.anon, dev.logged_in);
        self.ids(j, anon, user);
    }

    pub(super) fn ids(&mut self, j: &mut Json, anon: u32, person: u32) {
        if anon != NONE {
            j.key("anonymousId");
            j.open_str();
            self.anon_id(j, anon);
            j.close_str();
            if !self.graph.seen[anon as usize] {
                self.shape.distinct_anonymous_ids += 1;
            }
        }
        let mut user_node = NONE;
        if person != NONE && self.persons[person as usize].user_node != NONE {
            user_node = self.persons[person as usize].user_node;
            j.key("userId");
            j.open_str();
            self.user_id(j, person);
            j.close_str();
            let pr = &mut self.persons[person as usize];
            if !pr.user_emitted {
                pr.user_emitted = true;
                self.shape.distinct_user_ids += 1;
            }
        }
        self.graph.observe(anon, user_node);
    }

    pub(super) fn anon_id(&self, j: &mut Json, node: u32) {
        let n = u64::from(node);
        j.uuid(mix64(self.keys[0] ^ n), mix64(self.keys[1] ^ n), false);
    }

    pub(super) fn user_id(&self, j: &mut Json, p: u32) {
        j.raw("usr_");
        j.base36(mix64(self.keys[2] ^ u64::from(p)));
    }

    /// context, messageId, timestamp, sentAt, writeKey and the closing brace.
    pub(super) fn finish(&mut self, j: &mut Json, ctx: Ctx) {
        let source = match ctx {
            Ctx::Web { device, .. } | Ctx::Mobile { device } => {
                self.devices[device as usize].source
            }
            // Backend calls pick a server-side source per user (stable).
            Ctx::Server { person } => source_for(
                2,
                self.sources,
                attr(self.persons[person as usize].key, A_SOURCE),
            ),
            Ctx::Bot { .. } => source_for(0, self.sources, 0),
        };
        match ctx {
            Ctx::Web {
                device,
                page,
                referrer,
                campaign,
            } => self.web_context(j, device, page, referrer, campaign),
            Ctx::Mobile { device } => self.mobile_context(j, device),
            Ctx::Server { .. } => {
                j.obj("context");
                j.obj("library");
                j.kv_str("name", "analytics-node");
                j.kv_str("version", NODE_VERSION);
                j.end_obj();
                j.end_obj();
            }
            Ctx::Bot { bot, page } => self.bot_context(j, bot, page),
        }
        self.tail(j, ctx, source);
    }

    pub(super) fn tail(&mut self, j: &mut Json, ctx: Ctx, source: u32) {
        let (a, b) = (
            mix64(self.keys[3] ^ self.line),
            mix64(self.keys[4] ^ self.line),
        );
        j.key("messageId");
        j.open_str();
        match ctx {
            Ctx::Web { .. } | Ctx::Bot { .. } => {
                j.raw("ajs-next-");
                j.hex(a, 16);
                j.hex(b, 16);
            }
            Ctx::Mobile { device } => {
                let upper = self.devices[device as usize].platform == Platform::Ios;
                j.uuid(a, b, upper);
            }
            Ctx::Server { .. } => {
                j.raw("node-");
                j.uuid(a, b, false);
            }
        }
        j.close_str();
        j.kv_ts("timestamp", self.ts);
        let delay = match ctx {
            Ctx::Mobile { .. } => self.rng.range(200, 30_000),
            _ => self.rng.range(3, 900),
        };
        let sent = self.now.max(self.ts) + delay as i64;
        j.kv_ts("sentAt", sent);
        j.key("writeKey");
        j.open_str();
        j.raw("wk_source_");
        j.digits(u64::from(source));
        j.close_str();
        j.end_obj();
        match self.max_ts {
            Some(max) if self.ts < max => self.shape.late_events += 1,
            _ => {}
        }
        self.max_ts = Some(self.max_ts.map_or(self.ts, |m| m.max(self.ts)));
    }

    pub(super) fn web_context(
        &self,
        j: &mut Json,
        d: u32,
        page: PageRef,
        referrer: Referrer,
        campaign: Option<u8>,
    ) {
        let dev = &self.devices[d as usize];
        let place = PLACES[attr_pick(self.persons[dev.owner as usize].key, A_PLACE, PLACES.len())];
        j.obj("context");
        if let Some(c) = campaign {
            let (name, source, medium, ..) = CAMPAIGNS[usize::from(c)];
            j.obj("campaign");
            j.kv_str("name", name);
            j.kv_str("source", source);
            j.kv_str("medium", medium);
            j.end_obj();
        }
        j.key("ip");
        write_ip(j, attr(dev.key, A_IP));
        j.obj("library");
        j.kv_str("name", "analytics.js");
        j.kv_str("version", AJS_VERSION);
        j.end_obj();
        j.kv_str("locale", place.2);
        j.obj("page");
        write_page_fields(j, page, referrer, campaign);
        j.end_obj();
        j.kv_str("timezone", place.3);
        j.kv_str(
            "userAgent",
            USER_AGENTS[attr_pick(dev.key, A_UA, USER_AGENTS.len())],
        );
        j.end_obj();
    }

    pub(super) fn bot_context(&self, j: &mut Json, b: u8, page: PageRef) {
        j.obj("context");
        j.key("ip");
        write_ip(j, attr(u64::from(b), A_BOT_IP));
        j.obj("library");
        j.kv_str("name", "analytics.js");
        j.kv_str("version", AJS_VERSION);
        j.end_obj();
        j.kv_str("locale", "en-US");
        j.obj("page");
        write_page_fields(j, page, Referrer::External(0), None);
        j.end_obj();
        j.kv_str("userAgent", BOT_AGENTS[usize::from(b)]);
        j.end_obj();
    }

    pub(super) fn mobile_context(&self, j: &mut Json, d: u32) {
        let dev = &self.devices[d as usize];
        let k = dev.key;
        let ios = dev.platform == Platform::Ios;
        let place = PLACES[attr_pick(self.persons[dev.owner as usize].key, A_PLACE, PLACES.len())];
        let (app_version, build) = APP_VERSIONS[attr_pick(k, A_APP_VERSION, APP_VERSIONS.len())];
        j.obj("context");
        j.obj("app");
        j.kv_str("build", build);
        j.kv_str("name", APP_NAME);
        j.kv_str(
            "namespace",
            if ios {
                APP_NAMESPACE_IOS
            } else {
                APP_NAMESPACE_ANDROID
            },
        );
        j.kv_str("version", app_version);
        j.end_obj();
        j.obj("device");
        let tracking = attr(k, A_AD_TRACKING) % 100 < if ios { 30 } else { 85 };
        j.kv_bool("adTrackingEnabled", tracking);
        j.key("advertisingId");
        if tracking {
            j.open_str();
            j.uuid(attr(k, A_AD_ID), attr(k, A_AD_ID + 1), ios);
            j.close_str();
        } else {
            j.str("00000000-0000-0000-0000-000000000000");
        }
        j.key("id");
        j.open_str();
        if ios {
            j.uuid(attr(k, A_DEVICE_ID), attr(k, A_DEVICE_ID + 1), true);
        } else {
            j.hex(attr(k, A_DEVICE_ID), 16);
        }
        j.close_str();
        let (manufacturer, model, name, w, h, density) = if ios {
            let (model, name, w, h, dpr) = IOS_DEVICES[attr_pick(k, A_MODEL, IOS_DEVICES.len())];
            ("Apple", model, name, w, h, dpr)
        } else {
            let (m, model, w, h, dpr) =
                ANDROID_DEVICES[attr_pick(k, A_MODEL, ANDROID_DEVICES.len())];
            (m, model, model, w, h, dpr)
        };
        j.kv_str("manufacturer", manufacturer);
        j.kv_str("model", model);
        j.kv_str("name", name);
        if attr(k, A_TOKEN) % 100 < 65 {
            j.key("token");
            j.open_str();
            if ios {
                for s in 1..=4 {
                    j.hex(attr(k, A_TOKEN + s), 16);
                }
            } else {
                j.base36(attr(k, A_TOKEN + 1));
                j.raw(":APA91b");
                j.hex(attr(k, A_TOKEN + 2), 16);
                j.hex(attr(k, A_TOKEN + 3), 16);
            }
            j.close_str();
        }
        j.kv_str("type", if ios { "ios" } else { "android" });
        j.end_obj();
        j.key("ip");
        write_ip(j, attr(k, A_IP));
        j.obj("library");
        j.kv_str(
            "name",
            if ios {
                "analytics-ios"
            } else {
                "analytics-android"
            },
        );
        j.kv_str(
            "version",
            if ios {
                IOS_LIB_VERSION
            } else {
                ANDROID_LIB_VERSION
            },
        );
        j.end_obj();
        j.kv_str("locale", place.2);
        j.obj("network");
        let wifi = attr(k ^ (self.line >> 6), A_NETWORK) % 100 < 70;
        j.kv_str("carrier", CARRIERS[attr_pick(k, A_CARRIER, CARRIERS.len())]);
        j.kv_bool("cellular", !wifi);
        j.kv_bool("wifi", wifi);
        j.end_obj();
        j.obj("os");
        if ios {
            j.kv_str("name", "iOS");
            j.kv_str(
                "version",
                IOS_VERSIONS[attr_pick(k, A_OS_VERSION, IOS_VERSIONS.len())],
            );
        } else {
            j.kv_str("name", "Android");
            j.kv_str(
                "version",
                ANDROID_VERSIONS[attr_pick(k, A_OS_VERSION, ANDROID_VERSIONS.len())],
            );
        }
        j.end_obj();
        j.obj("screen");
        j.kv_u64("density", density);
        j.kv_u64("height", h);
        j.kv_u64("width", w);
        j.end_obj();
        j.kv_str("timezone", place.3);
        j.end_obj();
    }
}
