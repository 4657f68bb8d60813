//! The HDR latency histograms every recorder uses: their bounds, adding one into another, and
//! their serialization in result files (HdrHistogram V2, base64).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};

/// Largest latency a histogram tracks (1 hour, in microseconds); larger values are recorded as
/// this.
const HISTOGRAM_HIGHEST_US: u64 = 3_600_000_000;
/// Three significant figures: 0.1 % resolution, the usual choice for latency.
const HISTOGRAM_SIGNIFICANT_FIGURES: u8 = 3;

/// A fresh latency histogram in microseconds, at three significant figures. It grows with the
/// values it sees: fixed bounds up to an hour took 360 KB for each of the two histograms of every
/// endpoint, whether the run used it or not, and zeroing them was most of loadgen's start-up CPU;
/// a histogram of millisecond latencies holds about 64 KB.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new(HISTOGRAM_SIGNIFICANT_FIGURES).expect("three significant figures are valid")
}

/// Records `duration` in microseconds into a growing histogram (at least 1 us, at most an hour).
/// `saturating_record` would clamp it to the range the histogram has grown to so far instead of
/// growing it; `record` can only fail above what any histogram tracks, which the clamp rules out.
pub fn record_micros(histogram: &mut Histogram<u64>, duration: Duration) {
    let micros = u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, HISTOGRAM_HIGHEST_US);
    let _ = histogram.record(micros);
}

/// Adds `source` into `target`, widening `target` if the source holds larger values.
pub fn add_histogram(target: &mut Histogram<u64>, source: &Histogram<u64>) {
    if target.add(source).is_err() {
        target.auto(true);
        // With auto-resize on, adding can only fail on counter overflow, which u64 counts
        // of requests cannot reach.
        let _ = target.add(source);
    }
}
/// Why a serialized histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramCodecError {
    /// The text is not base64.
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not an HdrHistogram V2 encoding.
    #[error("histogram is not a valid HdrHistogram V2 encoding: {0}")]
    Decode(String),
    /// Serializing failed (cannot happen with in-memory buffers, kept for completeness).
    #[error("histogram could not be serialized: {0}")]
    Encode(String),
}

/// Serializes a histogram as HdrHistogram V2 (uncompressed), then base64, as other HDR tools read.
pub fn encode_histogram(histogram: &Histogram<u64>) -> Result<String, HistogramCodecError> {
    // The encoding's header names the highest value the histogram tracks, which for a growing
    // histogram depends on the order its values came in. Encoded with the largest value it holds
    // as that bound instead, equal contents encode alike: two merged shards as the one run.
    let mut canonical =
        Histogram::<u64>::new_with_bounds(1, histogram.max().max(2), histogram.sigfig())
            .map_err(|error| HistogramCodecError::Encode(format!("{error:?}")))?;
    canonical
        .add(histogram)
        .map_err(|error| HistogramCodecError::Encode(format!("{error:?}")))?;
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(&canonical, &mut bytes)
        .map_err(|error| HistogramCodecError::Encode(format!("{error:?}")))?;
    Ok(BASE64.encode(bytes))
}

/// Reads a histogram written by [`encode_histogram`].
pub fn decode_histogram(encoded: &str) -> Result<Histogram<u64>, HistogramCodecError> {
    let bytes = BASE64.decode(encoded.trim())?;
    let mut histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|error| HistogramCodecError::Decode(format!("{error:?}")))?;
    histogram.auto(true);
    Ok(histogram)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_through_v2_base64() {
        let mut histogram = new_latency_histogram();
        for value in [1, 10, 999, 12_345, 2_000_000] {
            histogram.record(value).unwrap();
        }
        let text = encode_histogram(&histogram).unwrap();
        let back = decode_histogram(&text).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.max(), histogram.max());
        assert_eq!(
            back.value_at_quantile(0.5),
            histogram.value_at_quantile(0.5)
        );
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("AAAA").is_err());
    }

    #[test]
    fn latency_histograms_grow_with_what_they_see_and_clamp_to_an_hour() {
        let mut histogram = new_latency_histogram();
        let empty_bytes = histogram.distinct_values() * std::mem::size_of::<u64>();
        for micros in [0, 450, 1_800, 9_500] {
            record_micros(&mut histogram, Duration::from_micros(micros));
        }
        let milliseconds_bytes = histogram.distinct_values() * std::mem::size_of::<u64>();
        eprintln!("{empty_bytes} bytes empty, {milliseconds_bytes} with milliseconds");
        assert!(empty_bytes <= 32 * 1024, "{empty_bytes}");
        assert!(milliseconds_bytes <= 70 * 1024, "{milliseconds_bytes}");
        // Zero is recorded as the smallest value, and two hours as the hour tracked.
        assert_eq!(histogram.min(), 1);
        record_micros(&mut histogram, Duration::from_secs(7_200));
        assert_eq!(histogram.len(), 5);
        let hour = HISTOGRAM_HIGHEST_US as f64;
        assert!((histogram.max() as f64 - hour).abs() / hour < 0.001);
    }
}
