import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

/**
 * Runs a Flink SQL script on a local MiniCluster inside this JVM (TableEnvironment, streaming
 * mode): the Flink half of Weir's peer benchmark (benches/peers/flink).
 *
 * <p>Arguments: {@code SCRIPT.sql [key=value ...]} (Flink configuration). Statements end with a
 * ';' at the end of a line; lines starting with "--" are comments. For every statement that runs a
 * job it prints one line
 *
 * <pre>FLINKRUN jvm_to_main_ms=.. main_to_env_ms=.. plan_submit_ms=.. submit_to_done_ms=..
 *   net_runtime_ms=.. cpu_before_plan_ms=.. cpu_plan_submit_ms=.. cpu_submit_to_done_ms=..</pre>
 *
 * (process CPU from the OperatingSystemMXBean: {@code cpu_submit_to_done_ms} is the job alone,
 * start-up and planning excluded), then one {@code FLINKCOUNT operator=<name> metric=<name>
 * value=<n>} line per operator counter, summed over subtasks, read after the job finished
 * (needs {@code metrics.reporter.rows.factory.class=RowCountReporterFactory}).
 */
public final class RunSql {
    private RunSql() {}

    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean)
                        ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    public static void main(String[] args) throws Exception {
        long jvmStart = ManagementFactory.getRuntimeMXBean().getStartTime();
        long mainStart = System.currentTimeMillis();
        if (args.length < 1) {
            System.err.println("usage: RunSql SCRIPT.sql [key=value ...]");
            System.exit(2);
        }
        Configuration conf = new Configuration();
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq < 1) {
                System.err.println("RunSql: expected key=value, got `" + args[i] + "`");
                System.exit(2);
            }
            conf.setString(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        EnvironmentSettings settings =
                EnvironmentSettings.newInstance().inStreamingMode().withConfiguration(conf).build();
        TableEnvironment tenv = TableEnvironment.create(settings);
        long envReady = System.currentTimeMillis();
        String script = Files.readString(Path.of(args[0]));
        StringBuilder stmt = new StringBuilder();
        for (String line : script.split("\n")) {
            String t = line.strip();
            if (t.startsWith("--") || t.isEmpty()) {
                continue;
            }
            stmt.append(line).append('\n');
            if (!t.endsWith(";")) {
                continue;
            }
            String sql = stmt.toString().strip();
            sql = sql.substring(0, sql.length() - 1);
            stmt.setLength(0);
            long before = System.currentTimeMillis();
            long cpuBefore = cpuNanos();
            TableResult result = tenv.executeSql(sql);
            Optional<JobClient> client = result.getJobClient();
            if (client.isEmpty()) {
                continue;
            }
            long submitted = System.currentTimeMillis();
            long cpuSubmitted = cpuNanos();
            JobExecutionResult jr = client.get().getJobExecutionResult().get();
            long done = System.currentTimeMillis();
            long cpuDone = cpuNanos();
            System.out.printf(
                    "FLINKRUN jvm_to_main_ms=%d main_to_env_ms=%d plan_submit_ms=%d"
                            + " submit_to_done_ms=%d net_runtime_ms=%d"
                            + " cpu_before_plan_ms=%d cpu_plan_submit_ms=%d"
                            + " cpu_submit_to_done_ms=%d%n",
                    mainStart - jvmStart, envReady - mainStart, submitted - before,
                    done - submitted, jr.getNetRuntime(), cpuBefore / 1_000_000,
                    (cpuSubmitted - cpuBefore) / 1_000_000, (cpuDone - cpuSubmitted) / 1_000_000);
            for (Map.Entry<String, Long> e : RowCountReporter.INSTANCE.drain().entrySet()) {
                String[] key = e.getKey().split("\t");
                System.out.printf(
                        "FLINKCOUNT operator=%s metric=%s value=%d%n",
                        key[0].replace(' ', '_'), key[1], e.getValue());
            }
        }
        System.out.flush();
        // The MiniCluster's threads would keep the JVM alive for a while; the jobs are done.
        System.exit(0);
    }
}
