/**
 * Number and plural forms by the platform's Intl rules, for the catalogues' sentences:
 * English has "one" and "other", Vietnamese only "other" (no plural inflection).
 */

export type PluralForms = Partial<Record<Intl.LDMLPluralRule, string>> & { other: string };

export function pluralizer(locale: string): (n: number, forms: PluralForms) => string {
  const rules = new Intl.PluralRules(locale);
  const numbers = new Intl.NumberFormat(locale);
  return (n, forms) => (forms[rules.select(n)] ?? forms.other).replace("#", numbers.format(n));
}

export function numberFormat(locale: string): (n: number, fractionDigits?: number) => string {
  const cache = new Map<number, Intl.NumberFormat>();
  return (n, fractionDigits = 0) => {
    let f = cache.get(fractionDigits);
    if (!f) {
      // No grouping: a measurement reads "-1000.0 HU" as radiologists write it.
      f = new Intl.NumberFormat(locale, { minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits, useGrouping: false });
      cache.set(fractionDigits, f);
    }
    return f.format(n);
  };
}
