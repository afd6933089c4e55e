// The names of the sides of pairings, looked up once per page: a supporting institution,
// team or clinician, and a supported institution or region.
import { api } from "./api.js";

/** A namer over the institutions already loaded (`institutions`, a list). */
export function namer(institutions) {
  const byId = new Map(institutions.map((i) => [i.id, i]));
  const cache = new Map();
  const institution = (id) => byId.get(id)?.name ?? `#${id}`;
  return {
    institution,
    /** The supporting side: an institution's name, or a team's or clinician's with their unit. */
    async supporter(s) {
      if (s.kind === "institution") return institution(s.id);
      const key = `${s.kind}:${s.id}`;
      if (!cache.has(key)) {
        const r = await api("GET", s.kind === "team" ? `/teams/${s.id}` : `/clinicians/${s.id}`);
        cache.set(key, r.status === 200 ? `${r.data.name}（${institution(r.data.institution_id)}）` : `#${s.id}`);
      }
      return cache.get(key);
    },
    /** The supported side: an institution's name or a region path. */
    supported(s) {
      return s.kind === "institution" ? institution(s.value) : s.value;
    },
  };
}
