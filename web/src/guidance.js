/**
 * Which tags constrain a caption, and when a constrained caption replaces the free one: the rules
 * of `edgecap/runtime/guidance.py` (its module docstring numbers them 1-7). Their values come from
 * the manifest (`edgecap/web/files.py` exports Python's `ConstraintOptions` and the COCO synonyms),
 * so this file holds the rules, never a second copy of the numbers.
 * @module guidance
 */
import { penalizeTokens } from './processors.js';
import { byScoreThenWord } from './tags.js';

export const SPECIAL_WORDS = 4;

/** The ids of a tag's forms that the vocabulary (word → id) has, sorted; [] if none. */
export function vocabularyForms(tag, index) {
  const ids = new Set();
  for (const w of tag.forms) if (index.has(w)) ids.add(index.get(w));
  return [...ids].sort((a, b) => a - b);
}

/** Length-normalised log-probability: `logProb / (words + 1)`, nats. */
export function perWord(hyp) {
  return hyp.logProb / (hyp.tokens.length + 1);
}

/**
 * Rules 1-4 and 6: the tags that constrain this caption, best first, each with its word ids.
 * @param {import('./tags.js').Tag[]} tags
 * @param {Map<string, number>} index the vocabulary, word → id
 * @param {number[]} freeTokens the free caption's word ids
 * @param {object} o the rules (`manifest.pipeline.constraints`: Python's ConstraintOptions)
 * @param {number|null} freePerWord the free caption's `perWord`
 * @returns {Array<[import('./tags.js').Tag, number[]]>}
 */
export function chooseConstraints(tags, index, freeTokens, o, freePerWord = null) {
  const said = new Set(freeTokens);
  const chosen = [];
  if (freePerWord !== null && o.confident < 0 && freePerWord >= o.confident) return chosen;
  const taken = new Set();
  for (const tag of [...tags].sort(byScoreThenWord)) {
    if (tag.score < o.min_score) break;
    const ids = vocabularyForms(tag, index);
    if (!ids.length || ids.some((i) => taken.has(i))) continue;
    if (o.skip_said && ids.some((i) => said.has(i))) continue;
    if (o.common_words && Math.min(...ids) < SPECIAL_WORDS + o.common_words) continue;
    chosen.push([tag, ids]);
    ids.forEach((i) => taken.add(i));
    if (chosen.length === o.max_constraints) break;
  }
  return chosen;
}

/** Rule 5: the constrained caption replaces the free one if it met its constraints and loses at most `margin` nats per word. */
export function keepConstrained(free, constrained, margin) {
  return constrained.constraintsMet && perWord(constrained) >= perWord(free) - margin;
}

/**
 * Rule 7: a processor taking `o.untagged_penalty` nats from the words of every COCO category that
 * `o.untagged_tagger` did not tag at `o.untagged_below` or more; null when the rule is off or that
 * tagger gave no tags. `untagged_penalty` null in the manifest stands for Infinity.
 * @param {Object<string, string[]>} synonyms COCO category → its caption words
 */
export function untaggedWords(tags, index, o, synonyms) {
  const penalty = o.untagged_penalty === null ? Infinity : o.untagged_penalty;
  if (!penalty || !tags.some((t) => t.source === o.untagged_tagger)) return null;
  const seen = new Set(tags.filter((t) => t.source === o.untagged_tagger && t.score >= o.untagged_below).map((t) => t.label));
  const ids = [];
  for (const [category, words] of Object.entries(synonyms)) {
    if (seen.has(category)) continue;
    for (const w of words) if (index.has(w)) ids.push(index.get(w));
  }
  return ids.length ? penalizeTokens(ids, penalty) : null;
}
