/**
 * Opening series on the viewports: the latest choice wins (a series chosen while another is
 * still loading supersedes it), and the series each study has, listed once per study, for the
 * compare chooser. The frames of an open stack load in loadOrder.ts's order (frameLoader.ts,
 * stackLoading.ts).
 */

import type { SeriesInfo } from "./dicomweb";

/** Latest wins: each `begin` supersedes the ones before it. */
export class Latest {
  private generation = 0;
  private stopped = false;

  /** A new attempt; the function tells whether a later one (or `stop`) superseded it. */
  begin(): () => boolean {
    const generation = ++this.generation;
    return () => this.stopped || generation !== this.generation;
  }

  stop(): void {
    this.stopped = true;
  }
}

export class SeriesCatalog {
  private offered: SeriesInfo[] = [];
  private readonly studies = new Map<string, Promise<SeriesInfo[]>>();

  constructor(private readonly list: (studyUID: string) => Promise<SeriesInfo[]>) {}

  /** The series offered to compare with (the case's studies, e.g. with a prior study). */
  get series(): readonly SeriesInfo[] {
    return this.offered;
  }

  /** The case's series: offered, and known without asking again. */
  set(series: SeriesInfo[]): void {
    this.offered = series.slice();
    for (const s of series) {
      if (!this.studies.has(s.studyUID)) {
        this.studies.set(s.studyUID, Promise.resolve(series.filter((x) => x.studyUID === s.studyUID)));
      }
    }
  }

  /** Without a case, the series of the study on screen are offered. False when there was
   * nothing new to offer. */
  async offerStudy(studyUID: string): Promise<boolean> {
    if (this.offered.length) return false;
    const series = await this.of(studyUID);
    if (this.offered.length) return false;
    this.offered = series;
    return true;
  }

  /** A study's series, listed once (a failed listing is asked again next time). */
  of(studyUID: string): Promise<SeriesInfo[]> {
    let listed = this.studies.get(studyUID);
    if (!listed) {
      listed = this.list(studyUID);
      listed.catch(() => this.studies.delete(studyUID));
      this.studies.set(studyUID, listed);
    }
    return listed;
  }

  /** A series by its study and UID; when the study does not list it, what is known of it. */
  async find(studyUID: string, seriesUID: string): Promise<SeriesInfo> {
    const listed = await this.of(studyUID).catch(() => [] as SeriesInfo[]);
    return (
      listed.find((s) => s.seriesUID === seriesUID) ?? {
        studyUID, seriesUID, number: null, modality: "", description: "", instanceCount: 0,
      }
    );
  }

  /** What the compare chooser offers: the catalog, else the series on screen; each once. */
  choices(onScreen: (SeriesInfo | null | undefined)[]): SeriesInfo[] {
    const options = this.offered.length ? this.offered : onScreen.filter((s): s is SeriesInfo => !!s);
    const seen = new Set<string>();
    return options.filter((s) => !seen.has(s.seriesUID) && seen.add(s.seriesUID));
  }
}
