import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Metric;
import org.apache.flink.metrics.MetricConfig;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.reporter.MetricReporter;

/**
 * Keeps a reference to every operator's {@code numRecordsIn} / {@code numRecordsOut} counter so
 * that {@link RunSql} can print the final counts once the job has finished (the counters stay
 * readable after their tasks close their metric groups). It reports nothing periodically, so it
 * adds no work to the measured job. Registered through {@link RowCountReporterFactory}.
 */
public final class RowCountReporter implements MetricReporter {
    /** The one instance: the MiniCluster runs in this JVM, so RunSql reads the same counters. */
    static final RowCountReporter INSTANCE = new RowCountReporter();

    /** Key: operator name, subtask index, metric name. */
    private final Map<String, Counter> counters = new ConcurrentHashMap<>();

    private RowCountReporter() {}

    @Override
    public void open(MetricConfig config) {}

    @Override
    public void close() {}

    @Override
    public void notifyOfAddedMetric(Metric metric, String name, MetricGroup group) {
        if (!(metric instanceof Counter)) {
            return;
        }
        if (!name.equals("numRecordsIn") && !name.equals("numRecordsOut")) {
            return;
        }
        Map<String, String> vars = group.getAllVariables();
        String operator = vars.get("<operator_name>");
        if (operator == null) {
            return; // a task- or job-level counter, not an operator's
        }
        String subtask = vars.getOrDefault("<subtask_index>", "?");
        counters.put(operator + "\t" + subtask + "\t" + name, (Counter) metric);
    }

    @Override
    public void notifyOfRemovedMetric(Metric metric, String name, MetricGroup group) {
        // Keep the counter: its final value is read after the job has finished.
    }

    /** Per operator and metric, the counts summed over subtasks; then forgets the counters. */
    Map<String, Long> drain() {
        Map<String, Long> sums = new TreeMap<>();
        for (Map.Entry<String, Counter> e : counters.entrySet()) {
            String[] key = e.getKey().split("\t");
            sums.merge(key[0] + "\t" + key[2], e.getValue().getCount(), Long::sum);
        }
        counters.clear();
        return sums;
    }
}
