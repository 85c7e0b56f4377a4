import java.util.Properties;

import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;

/**
 * Flink loads reporters through factories found by {@link java.util.ServiceLoader}
 * ({@code META-INF/services/org.apache.flink.metrics.reporter.MetricReporterFactory}), selected
 * with {@code metrics.reporter.<name>.factory.class=RowCountReporterFactory}.
 */
public final class RowCountReporterFactory implements MetricReporterFactory {
    @Override
    public MetricReporter createMetricReporter(Properties properties) {
        return RowCountReporter.INSTANCE;
    }
}
